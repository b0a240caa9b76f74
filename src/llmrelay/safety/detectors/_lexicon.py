"""Weighted phrase lexicons shared by the score-based detectors (injection, toxicity).

A :class:`Lexicon` holds ``(weight, pattern, anchors)`` signals. ``anchors`` are words at least
one of which every match of the pattern contains, so a text without any of them cannot match and
the pattern is not run at all: a benign prompt usually wakes no signal and costs a few set
look-ups instead of a regex pass. The signals that are awake are compiled into one alternation
(cached per combination), so a text is still scanned at most once. The score is
``1 - prod(1 - w)`` over distinct signals: independent pieces of evidence add up but never pass 1.

An anchor is a word (``"ignore"``: the text has that word), ``"pre:"`` + at least 3 letters (a
word starts with them) or ``"sub:"`` + a string (it occurs anywhere in the lower-cased text);
``"a|b"`` is either, ``"a&b"`` both (``&`` binds looser: ``"kill|shoot&we|lets"``):

    >>> lex = Lexicon([(0.9, r"\\bignore\\s+previous\\b", ("ignore",)), (0.5, r"\\bfoo\\w*\\s+bar", ("pre:foo&bar",))])
    >>> [h.signal for h in lex.hits(TextView("Please ignore previous notes"))]
    [0]
    >>> lex.hits(TextView("nothing to see")), lex.awake(TextView("food bar"))
    ([], (1,))

Anchors are a promise about the pattern; ``tests/safety/test_detector_speed.py`` checks that the
anchored scan finds exactly what the full pattern finds on every row of the public data.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ._view import TextView

Signal = tuple[float, str, tuple[str, ...]]
_MAX_COMBINATIONS = 512


@dataclass(frozen=True, slots=True)
class Hit:
    signal: int
    start: int
    end: int
    weight: float


class Lexicon:
    """Signals are written in lower case and matched on lower-cased text: anchoring the one
    alternation at word starts (``\\b``) without IGNORECASE is ~15x faster than IGNORECASE."""

    def __init__(self, signals: Sequence[Signal]) -> None:
        self.weights = tuple(s[0] for s in signals)
        self._patterns = tuple(s[1] for s in signals)
        # Plain-word anchors are one set per signal (a single isdisjoint); the rest are parsed into
        # groups of atoms, and all atoms are checked at once per text (set operations, not loops).
        self._words = tuple(frozenset(a for a in s[2] if _is_word(a)) for s in signals)
        self._complex = tuple(tuple(_parse(a) for a in s[2] if not _is_word(a)) for s in signals)
        atoms = {o for sig in self._complex for anchor in sig for group, _ in anchor for o in group}
        self._atom_words = frozenset(v for k, v in atoms if k == "w")
        self._atom_pre3 = frozenset(v for k, v in atoms if k == "pre" and len(v) == 3)
        self._atom_pre4 = frozenset(v for k, v in atoms if k == "pre" and len(v) == 4)
        self._atom_pre_long = tuple(sorted(v for k, v in atoms if k == "pre" and len(v) > 4))
        self._all = self._compile(tuple(range(len(signals))))
        # For the rare text whose lower-case form changes length (offsets would drift).
        self._slow = re.compile("|".join(f"(?P<s{i}>{p})" for i, p in enumerate(self._patterns)), re.IGNORECASE)
        self._by_combination: dict[tuple[int, ...], re.Pattern[str]] = {}

    def _compile(self, signals: tuple[int, ...]) -> re.Pattern[str]:
        return re.compile(r"\b(?:" + "|".join(f"(?P<s{i}>{self._patterns[i]})" for i in signals) + ")")

    def awake(self, view: TextView) -> tuple[int, ...]:
        """The signals whose anchors the text has."""
        words = view.words
        present: set[Atom] = {("w", w) for w in self._atom_words.intersection(words)}
        if self._atom_pre3:
            present.update([("pre", p) for p in self._atom_pre3.intersection(view.prefixes(3))])
        if self._atom_pre4:
            present.update([("pre", p) for p in self._atom_pre4.intersection(view.prefixes(4))])
        present.update([("pre", p) for p in self._atom_pre_long if view.has_prefix(p)])
        # Substrings cost a scan of the text each, so they are looked for only when the rest of
        # their anchor holds (they come last in it) and each at most once.
        found: dict[str, bool] = {}
        low = view.low
        out: list[int] = []
        for i, ws in enumerate(self._words):
            if not ws.isdisjoint(words):
                out.append(i)
                continue
            for anchor in self._complex[i]:
                for group, subs in anchor:
                    if present.isdisjoint(group) and not any(_contains(low, s, found) for s in subs):
                        break
                else:
                    out.append(i)
                    break
        return tuple(out)

    def _regex_for(self, signals: tuple[int, ...]) -> re.Pattern[str]:
        rx = self._by_combination.get(signals)
        if rx is None:
            if len(self._by_combination) >= _MAX_COMBINATIONS:
                self._by_combination.clear()
            rx = self._by_combination[signals] = self._compile(signals)
        return rx

    def hits(self, view: TextView, *, anchored: bool = True) -> list[Hit]:
        """Every signal match in the text (``anchored=False`` runs every pattern: the reference)."""
        low = view.low
        if not view.lowered:
            rx, low = self._slow, view.text
        elif anchored:
            signals = self.awake(view)
            if not signals:
                return []
            rx = self._all if len(signals) == len(self.weights) else self._regex_for(signals)
        else:
            rx = self._all
        out: list[Hit] = []
        for m in rx.finditer(low):
            i = int((m.lastgroup or "s0")[1:])
            out.append(Hit(i, m.start(), m.end(), self.weights[i]))
        return out


Atom = tuple[str, str]  # (kind, value): ("w", "ignore"), ("pre", "foo"), ("sub", "]")


def _is_word(anchor: str) -> bool:
    return ":" not in anchor and "&" not in anchor and "|" not in anchor


def _contains(low: str, sub: str, found: dict[str, bool]) -> bool:
    hit = found.get(sub)
    if hit is None:
        hit = found[sub] = sub in low
    return hit


def _parse(anchor: str) -> tuple[tuple[frozenset[Atom], tuple[str, ...]], ...]:
    """"a|b&c" -> groups (a, b) and (c,): all of the groups, any option within one; each group
    split into its set-checked atoms and its substrings; groups with substrings go last."""
    groups = []
    for group in anchor.split("&"):
        options: list[Atom] = []
        for o in group.split("|"):
            kind, _, value = o.rpartition(":")
            if kind not in ("", "pre", "sub") or not value or (kind == "pre" and len(value) < 3):
                raise ValueError(f"bad anchor {o!r} in {anchor!r}")
            options.append((kind or "w", value))
        groups.append((frozenset(o for o in options if o[0] != "sub"), tuple(v for k, v in options if k == "sub")))
    return tuple(sorted(groups, key=lambda g: len(g[1]) > 0))


def combine(weights: Sequence[float]) -> float:
    p = 1.0
    for w in weights:
        p *= 1.0 - w
    return 1.0 - p
