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
from collections.abc import Iterator, Sequence
from re import _constants, _parser  # type: ignore[attr-defined]
from typing import Any

from ._view import ascii_table, translate_ascii

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


def structure(pattern: str, start: int = 0) -> Iterator[tuple[int, str, int]]:
    """``(index, character, depth)`` of each character of ``pattern`` from ``start`` that is not
    escaped nor inside a character class; ``depth`` counts the groups open after the character (a
    ``(`` is reported at its group's depth, a ``)`` at the depth outside it)."""
    depth = 0
    in_class = escaped = False
    for i in range(start, len(pattern)):
        ch = pattern[i]
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif in_class:
            in_class = ch != "]" or pattern[i - 1] == "["
        elif ch == "[":
            in_class = True
        else:
            depth += (ch == "(") - (ch == ")")
            yield i, ch, depth


def split_alternatives(pattern: str) -> list[str]:
    """The top-level ``|`` branches of a pattern (outside groups, classes and escapes)."""
    out: list[str] = []
    start = 0
    for i, ch, depth in structure(pattern):
        if ch == "|" and depth == 0:
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


class RunWindows:
    """Where a pattern can match in an ASCII text: every match of it is made of characters of one
    set (its *alphabet*) and is at least ``min_len`` long, so it lies inside a maximal run of
    alphabet characters at least that long. A text's runs are found with one C-speed translate
    (alphabet -> "x", the rest -> " ") and ``str.find`` of ``min_len`` x's; a token-format pass
    then reads a few runs instead of every position of the text (the regex engine pays ~60 ns per
    position tried, whatever the pattern).

        >>> w = RunWindows.of(r"\\bAKIA[0-9A-Z]{16}\\b")
        >>> w.spans("key AKIAIOSFODNN7EXAMPLE, https://example.com/a")
        [(4, 25)]

    A span reaches one character past its run, so a closing ``\\b`` sees what follows as in the
    whole text; a look-behind sees before ``pos`` anyway. Patterns that look ahead, anchor at the
    string's ends, ignore case or refer back get no windows (:meth:`of` returns None)."""

    __slots__ = ("_run", "_table")

    def __init__(self, alphabet: frozenset[str], min_len: int) -> None:
        self._table = ascii_table(str.maketrans({chr(c): "x" if chr(c) in alphabet else " " for c in range(128)}))
        self._run = "x" * min_len

    @classmethod
    def of(cls, pattern: str) -> RunWindows | None:
        parsed = _parser.parse(pattern)
        if parsed.state.flags & re.IGNORECASE:
            return None
        alphabet = _alphabet(parsed)
        min_len = parsed.getwidth()[0]
        if alphabet is None or min_len < 1 or len(alphabet) == 128 or _literal_first(parsed):
            return None  # (a pattern that starts with a literal: the engine skips to it by itself)
        return cls(alphabet, min_len)

    def spans(self, text: str, literals: tuple[str, ...] | None = None) -> list[tuple[int, int]]:
        """(start, end) to pass as ``pos``/``endpos``: each run of ``text`` long enough to hold a
        match, with one character of look-ahead. The whole text when that is cheaper: a non-ASCII
        text, or runs that cover most of it or are many (each pass costs ~1 µs to start).

        ``literals``: strings one of which every match holds (:func:`required_literals`); then
        only the runs holding one are read (a match's literal lies inside the match's run)."""
        n = len(text)
        if not text.isascii():
            return [(0, n)]
        shape = translate_ascii(text, self._table)
        if literals is not None:
            return self._runs_with(text, shape, literals)
        run = self._run
        out: list[tuple[int, int]] = []
        covered = 0
        start = shape.find(run)
        while start != -1:
            end = shape.find(" ", start + len(run))
            end = n if end == -1 else end
            out.append((start, min(end + 1, n)))
            covered += end - start
            if len(out) > _MAX_RUNS or covered > n // 2:
                return [(0, n)]
            start = shape.find(run, end)
        return out


    def _runs_with(self, text: str, shape: str, literals: tuple[str, ...]) -> list[tuple[int, int]]:
        """The runs of ``shape`` at least ``min_len`` long that hold an occurrence of a literal,
        in order. A pattern whose alphabet holds most characters but spaces (a credential URL:
        ``[^\\s'"]+``) has a run per token, too many for a pass each, while its literal ("://")
        is in one or two of them: the alternative is one pass over the whole text, ~60-90 ns per
        position tried."""
        n = len(text)
        starts: set[int] = set()
        out: list[tuple[int, int]] = []
        for lit in literals:
            at = text.find(lit)
            while at != -1:
                start = shape.rfind(" ", 0, at) + 1
                end = shape.find(" ", at + len(lit))
                end = n if end == -1 else end
                if start not in starts and end - start >= len(self._run) and shape.find(" ", at, at + len(lit)) == -1:
                    starts.add(start)
                    out.append((start, min(end + 1, n)))
                at = text.find(lit, end)
        out.sort()
        return out


_MAX_RUNS = 6
_ASCII = frozenset(map(chr, range(128)))


def _literal_first(items: Any) -> bool:
    """The pattern's first character is a literal (after zero-width assertions)."""
    c = _constants
    for op, arg in items:
        if op == c.AT:
            continue
        if op == c.SUBPATTERN and not arg[1] and not arg[2]:
            return _literal_first(arg[-1])
        return bool(op == c.LITERAL)
    return False
_CATEGORY_TESTS = {
    getattr(_constants, f"CATEGORY_{name}"): frozenset(c for c in _ASCII if re.fullmatch(rx, c))
    for name, rx in (("DIGIT", r"\d"), ("NOT_DIGIT", r"\D"), ("SPACE", r"\s"), ("NOT_SPACE", r"\S"), ("WORD", r"\w"), ("NOT_WORD", r"\W"))
}
_ZERO_WIDTH_OK = frozenset({_constants.AT_BOUNDARY, _constants.AT_NON_BOUNDARY})


def _alphabet(items: Any) -> frozenset[str] | None:
    """The ASCII characters a match of ``items`` (parsed) can consume; None when a construct could
    read past the match's end (look-ahead, ``$``) or is not understood."""
    c = _constants
    out: set[str] = set()
    for op, arg in items:
        if op == c.LITERAL:
            out.add(chr(arg))
        elif op == c.NOT_LITERAL:
            out |= _ASCII - {chr(arg)}
        elif op == c.ANY:
            out |= _ASCII
        elif op == c.IN:
            got = _class_chars(arg)
            if got is None:
                return None
            out |= got
        elif op == c.CATEGORY and arg in _CATEGORY_TESTS:
            out |= _CATEGORY_TESTS[arg]
        elif op == c.AT and arg in _ZERO_WIDTH_OK:
            continue
        elif op == c.ASSERT_NOT or op == c.ASSERT:
            if arg[0] >= 0:
                return None  # a look-ahead reads past the match
        elif op == c.SUBPATTERN:
            if arg[1] & re.IGNORECASE or arg[2]:
                return None
            sub = _alphabet(arg[-1])
            if sub is None:
                return None
            out |= sub
        elif op == c.BRANCH:
            for branch in arg[1]:
                sub = _alphabet(branch)
                if sub is None:
                    return None
                out |= sub
        elif op in (c.MAX_REPEAT, c.MIN_REPEAT, getattr(c, "POSSESSIVE_REPEAT", None)):
            sub = _alphabet(arg[2])
            if sub is None:
                return None
            out |= sub
        else:
            return None
    return frozenset(out)


def _class_chars(items: Any) -> frozenset[str] | None:
    """The ASCII characters a ``[...]`` set matches (exactly: a negated set is its complement)."""
    c = _constants
    out: set[str] = set()
    negate = False
    for op, arg in items:
        if op == c.NEGATE:
            negate = True
        elif op == c.LITERAL:
            out.add(chr(arg))
        elif op == c.RANGE:
            out.update(chr(x) for x in range(arg[0], min(arg[1], 127) + 1))
        elif op == c.CATEGORY and arg in _CATEGORY_TESTS:
            out |= _CATEGORY_TESTS[arg]
        else:
            return None
    return _ASCII - out if negate else frozenset(out)
