"""An alternation that runs only the alternatives whose required literal the text holds.

Python's regex engine tries every branch of an alternation at every position, so a pass of ~40
vendor token formats over a few hundred characters costs ~150 µs, while most of those formats
carry a literal of their own (``NRAL``, ``AZDO``, ``.apps.googleusercontent.com``, ``AKIA|ASIA``)
that a substring test rules out in well under a microsecond. Dropping an alternative that cannot
match anywhere in the text leaves the alternation's matches unchanged: at every position the first
branch that matches is still the same one.

    >>> alts = GatedAlternation([("k", r"\\bfoo\\d+|\\bbar\\d+"), ("j", r"[a-z]+-baz")])
    >>> rx = alts.regex_for("x bar12 y")
    >>> [(m.lastgroup, m.group()) for m in rx.finditer("x bar12 y")] if rx else None
    [('k0', 'bar12')]
    >>> alts.regex_for("nothing here") is None
    True
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from re import _constants, _parser  # type: ignore[attr-defined]
from typing import Any

_MAX_COMBINATIONS = 256


class GatedAlternation:
    """``entries`` are ``(name, pattern)``; a match's ``lastgroup`` is ``f"{name}{index}"`` where
    ``index`` is the entry's position, whichever of its alternatives matched."""

    def __init__(self, entries: Sequence[tuple[str, str]], prefix: str = "") -> None:
        self._prefix = prefix
        alts: list[tuple[str, str, tuple[str, ...] | None]] = []
        for i, (name, pattern) in enumerate(entries):
            for alt in split_alternatives(pattern):
                alts.append((f"{name}{i}", alt, required_literals(alt)))
        self._alts = tuple(alts)
        self._always = tuple(i for i, (_, _, lits) in enumerate(alts) if lits is None)
        # Each distinct literal once, with the alternatives it wakes (several share one: "sk-").
        by_literal: dict[str, list[int]] = {}
        for i, (_, _, lits) in enumerate(alts):
            for lit in lits or ():
                by_literal.setdefault(lit, []).append(i)
        self._literals = tuple(by_literal)
        self._wakes = by_literal
        self._by_combination: dict[tuple[int, ...], re.Pattern[str]] = {}

    @property
    def pattern(self) -> str:
        """Every alternative in one pattern (what the gated regexes are subsets of)."""
        return self._compile(tuple(range(len(self._alts))))

    def regex_for(self, text: str) -> re.Pattern[str] | None:
        """The alternation of the alternatives that can match in ``text`` (None: none can)."""
        wakes = self._wakes
        awake = set(self._always)
        for lit in [lit for lit in self._literals if lit in text]:
            awake.update(wakes[lit])
        if not awake:
            return None
        key = tuple(sorted(awake))
        rx = self._by_combination.get(key)
        if rx is None:
            if len(self._by_combination) >= _MAX_COMBINATIONS:
                self._by_combination.clear()
            rx = self._by_combination[key] = re.compile(self._compile(key))
        return rx

    def _compile(self, awake: tuple[int, ...]) -> str:
        groups: list[tuple[str, list[str]]] = []
        for i in awake:
            name, alt, _ = self._alts[i]
            if groups and groups[-1][0] == name:
                groups[-1][1].append(alt)
            else:
                groups.append((name, [alt]))
        return self._prefix + "(?:" + "|".join(f"(?P<{n}>{'|'.join(a)})" for n, a in groups) + ")"


def split_alternatives(pattern: str) -> list[str]:
    """The top-level ``|`` branches of a pattern (outside groups, classes and escapes)."""
    out: list[str] = []
    depth = start = 0
    in_class = escaped = False
    for i, ch in enumerate(pattern):
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif in_class:
            in_class = ch != "]" or pattern[i - 1] == "["
        elif ch == "[":
            in_class = True
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "|" and depth == 0:
            out.append(pattern[start:i])
            start = i + 1
    out.append(pattern[start:])
    return out


def required_literals(pattern: str) -> tuple[str, ...] | None:
    """Strings one of which every match of ``pattern`` contains (the longest such choice among its
    top-level literal runs and branches of plain literals), or None when there is none."""
    parsed = _parser.parse(pattern)
    if parsed.state.flags & re.IGNORECASE:
        return None  # literals would have to be looked for in every case
    best: tuple[str, ...] | None = None
    for option in _candidates(parsed):
        if option and (best is None or min(map(len, option)) > min(map(len, best))):
            best = option
    return best


def _candidates(items: Any) -> list[tuple[str, ...]]:
    c = _constants
    out: list[tuple[str, ...]] = []
    run: list[str] = []
    for op, arg in items:
        if op == c.LITERAL:
            run.append(chr(arg))
            continue
        if run:
            out.append(("".join(run),))
            run = []
        if op == c.BRANCH:
            words = [_plain_literal(b) for b in arg[1]]
            if all(words):
                out.append(tuple(w for w in words if w))
        elif op == c.SUBPATTERN and not arg[1] and not arg[2]:
            out += _candidates(arg[-1])  # a group without flags: its own required runs count
    if run:
        out.append(("".join(run),))
    return out


def _plain_literal(items: Any) -> str | None:
    """The string a branch matches when it is nothing but literals (None otherwise)."""
    chars = [chr(arg) for op, arg in items if op == _constants.LITERAL]
    return "".join(chars) if chars and len(chars) == len(items) else None
