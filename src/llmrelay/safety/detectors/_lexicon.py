"""Weighted phrase lexicons shared by the score-based detectors (injection, toxicity).

A :class:`Lexicon` holds ``(weight, pattern, anchors)`` signals. ``anchors`` are words at least
one of which every match of the pattern contains, so a text without any of them cannot match and
the pattern is not run at all: a benign prompt usually wakes no signal and costs a few set
look-ups instead of a regex pass. The signals that are awake are compiled into one alternation
(cached per combination), so a text is still scanned at most once. The score is
``1 - prod(1 - w)`` over distinct signals: independent pieces of evidence add up but never pass 1.

An anchor is a word (``"ignore"``: the text has that word), ``"pre:"`` + at least 3 letters (a
word starts with them) or ``"sub:"`` + a string (it occurs anywhere in the lower-cased text);
``"a|b"`` is either, ``"a&b"`` both (``&`` binds looser: ``"kill|shoot&we|lets"``). A group
``"re:<regex>"`` (the whole group, so the regex may hold ``|`` but not ``&``) is a gate: the regex
must match somewhere in the lower-cased text (``"nre:"``: in the normalised text, where every
separator is a space, so ``" a +threat"`` says "a" then "threat" as whole words). It says what the words alone cannot (that two of them
are adjacent: ``"system&prompt&re:system\\s+prompt"``), is tested last and once per view, and
must start with at least two plain characters (the engine then skips to them at C speed):

    >>> lex = Lexicon([(0.9, r"\\bignore\\s+previous\\b", ("ignore",)), (0.5, r"\\bfoo\\w*\\s+bar", ("pre:foo&bar",))])
    >>> [h.signal for h in lex.hits(TextView("Please ignore previous notes"))]
    [0]
    >>> lex.hits(TextView("nothing to see")), lex.awake(TextView("food bar"))
    ([], (1,))
    >>> gated = Lexicon([(0.5, r"\\bsystem\\s+prompt", ("system&prompt&re:system\\s+prompt",))])
    >>> gated.awake(TextView("the system reads the prompt")), gated.awake(TextView("a system  prompt"))
    ((), (0,))

Anchors are a promise about the pattern; ``tests/safety/test_detector_speed.py`` checks that the
anchored scan finds exactly what the full pattern finds on every row of the public data.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from re import _constants, _parser  # type: ignore[attr-defined]
from typing import Any

from ._literals import split_alternatives, structure
from ._view import _SHORT, TextView

Signal = tuple[float, str, tuple[str, ...]]
_MAX_COMBINATIONS = 512
# Beyond this many anchor occurrences, windows cost more than they save.
_MAX_PLACES = 48


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
        # What the scans compile: the same patterns with their leading alternation grouped by first
        # character (see first_char_buckets); the reference (``anchored=False``) keeps the originals.
        self._fast = tuple(_bucketed(p) for p in self._patterns)
        # Plain-word anchors are one set per signal (a single isdisjoint); the rest are parsed into
        # groups of atoms, and all atoms are checked at once per text (set operations, not loops).
        self._words = tuple(frozenset(a for a in s[2] if _is_word(a)) for s in signals)
        self._complex = tuple(tuple(_parse(a) for a in s[2] if not _is_word(a)) for s in signals)
        # The regex gates ("re:" groups), compiled once; a group holds one, marked by a leading NUL.
        self._rx = {g: (re.compile(g[2:]), g[1] == "n") for sig in self._complex for anchor in sig for _, subs in anchor for g in subs if g[:1] == _GATE}
        atoms = {o for sig in self._complex for anchor in sig for group, _ in anchor for o in group}
        self._atom_words = frozenset(v for k, v in atoms if k == "w")
        self._atom_pre3 = frozenset(v for k, v in atoms if k == "pre" and len(v) == 3)
        # Each 3-character prefix atom followed by any ASCII character: on ASCII text, the words'
        # 4-character prefixes (which the 4-character atoms need anyway) say which 3-character
        # atoms the text has, without a set of 3-character prefixes (~26 µs on 4 KB).
        self._pre3_by_ext = {a + chr(c): a for a in self._atom_pre3 for c in range(128)}
        self._pre3_ext = frozenset(self._pre3_by_ext)
        self._atom_pre4 = frozenset(v for k, v in atoms if k == "pre" and len(v) == 4)
        self._atom_pre_long = tuple(sorted(v for k, v in atoms if k == "pre" and len(v) > 4))
        # The longer prefix atoms by their first four characters: only those whose four the text's
        # words start with are looked for (one set intersection, then a search each).
        by4: dict[str, list[str]] = {}
        for v in self._atom_pre_long:
            by4.setdefault(v[:4], []).append(v)
        self._pre_long_by4 = {k: tuple(v) for k, v in by4.items()}
        self._pre_long4 = frozenset(by4)
        self._index_anchors()
        self._gate_words, self._gate_pre4, self._gate_subs = self._gate()
        self._key_by_atom, self._key_by_sub = self._index_keys()
        self._short_groups = tuple(tuple(tuple(_short_group(g) for g in anchor) for anchor in sig) for sig in self._complex)
        self._all = self._compile(tuple(range(len(signals))), self._patterns)
        self._all_fast = self._compile(tuple(range(len(signals))))
        # For the rare text whose lower-case form changes length (offsets would drift).
        self._slow = re.compile("|".join(f"(?P<s{i}>{p})" for i, p in enumerate(self._patterns)), re.IGNORECASE)
        self._by_combination: dict[tuple[int, ...], re.Pattern[str]] = {}
        # How many tokens either side of an anchor each signal can reach (None: unbounded).
        self._gaps = tuple(max_gaps(p) for p in self._patterns)
        self._reach: dict[int | None, re.Pattern[str]] = {g: re.compile(r"\S*(?:\s+\S+){0," + str(g) + "}") for g in set(self._gaps) if g is not None}

    def _compile(self, signals: tuple[int, ...], patterns: tuple[str, ...] | None = None) -> re.Pattern[str]:
        pats = self._fast if patterns is None else patterns
        return re.compile(r"\b(?:" + "|".join(f"(?P<s{i}>{pats[i]})" for i in signals) + ")")

    def awake(self, view: TextView) -> tuple[int, ...]:
        """The signals whose anchors the text has."""
        return self._awake(view)[0]

    def _awake(self, view: TextView) -> tuple[tuple[int, ...], set[Atom]]:
        """The awake signals, and the anchor atoms (words and prefixes) the text has."""
        if self._quiet(view):
            return (), set()
        return self._awake_general(view)

    def _awake_general(self, view: TextView) -> tuple[tuple[int, ...], set[Atom]]:
        """:meth:`_awake` without the short-text gate."""
        # Asked of the view, not of its sets: a patched view answers without copying them.
        present: set[Atom] = {("w", w) for w in view.common_words(self._atom_words)}
        if self._atom_pre3:
            present.update([("pre", p) for p in self._pre3_present(view)])
        if self._atom_pre4:
            present.update([("pre", p) for p in view.common_prefixes(self._atom_pre4, 4)])
        if self._pre_long4:
            by4 = self._pre_long_by4
            present.update([("pre", p) for p4 in view.common_prefixes(self._pre_long4, 4) for p in by4[p4] if view.starts_word(p)])
        # Substrings cost a scan of the text each, so they are looked for only when the rest of
        # their anchor holds (they come last in it) and each at most once per view.
        contains = view.contains
        awake = {i for w in view.common_words(self._plain) for i in self._by_word[w]}
        # Only the anchors whose first group the text holds (or whose first group has
        # substrings) can hold: a few of the ~100, found from the text's few anchor atoms.
        maybe = set(self._unindexed)
        by_atom = self._by_atom
        for atom in present:
            maybe.update(by_atom.get(atom, ()))
        rx = self._rx
        for i, j in sorted(maybe):
            if i in awake:
                continue
            for group, subs in self._complex[i][j]:
                if present.isdisjoint(group) and not (subs and (view.search(*rx[subs[0]]) if subs[0][:1] == _GATE else any(map(contains, subs)))):
                    break
            else:
                awake.add(i)
        return tuple(sorted(awake)), present

    def _gate(self) -> tuple[frozenset[str], frozenset[str], re.Pattern[str] | None]:
        """What a text must hold for any signal to wake (see :meth:`_quiet`): a plain-word anchor,
        or for some anchor one option of its key group (an anchor holds only when all its groups
        do, so any one group will do; the one least likely in ordinary prose, see :func:`_key_group`).
        As word, 4-character word-start and substring sets: a prefix atom ``p`` is held by a word
        whose first four characters are ``p[:4]`` (or, for a 3-character ``p``, ``p`` plus any
        ASCII character) or, when ``p`` has 3 characters, by the word ``p``."""
        words: set[str] = set(self._plain)
        pre4: set[str] = set()
        subs: list[str] = []
        for anchors in self._complex:
            for anchor in anchors:
                group, gsubs = _key_group(anchor)
                subs += gsubs
                for kind, v in group:
                    if kind == "w":
                        words.add(v)
                    elif len(v) == 3:
                        words.add(v)
                        pre4.update(v + chr(c) for c in range(128))
                    else:
                        pre4.add(v[:4])
        return frozenset(words), frozenset(pre4), _any_of(subs)

    def _quiet(self, view: TextView) -> bool:
        """No signal can wake: a short ASCII text (most prompts) has none of the gate words, word
        starts or substrings. Three C-speed tests where :meth:`_awake`'s general path costs
        ~10 µs of set building and per-anchor look-ups to come to the same empty answer. When one
        of them holds, the few anchors whose key group it may satisfy are evaluated whole
        (:meth:`_short_holds`): "about" is a key of one toxicity anchor and in many prompts, while
        the anchor's other group ("bi", "gay", ...) is not, so the text is still quiet. Exact on
        short ASCII text: ``_quiet`` is then ``awake() == ()``. Longer texts keep the general
        path: there the substrings are memoised per view (:meth:`TextView.contains`)."""
        low = view.low
        if len(low) > _SHORT or not low.isascii():
            return False
        # On ASCII text a word starting with a 3-character atom longer than it has its first four
        # characters in _pre3_ext (see _pre3_present); one exactly the atom is in _gate_words.
        words = view.words
        if words.isdisjoint(self._gate_words):
            pre4 = view.prefixes(4)
            if pre4.isdisjoint(self._gate_pre4) and (self._gate_subs is None or self._gate_subs.search(low) is None):
                return True
        elif not words.isdisjoint(self._plain):
            return False  # a plain-word anchor wakes its signals
        return self._short_quiet(view)

    def _short_quiet(self, view: TextView) -> bool:
        """:meth:`_quiet`'s second stage: no anchor whose key group the text may hold holds whole.
        An anchor outside these has a key group with no option in the text (the gate sets hold
        every option of every key group), so it cannot hold either."""
        by_atom = self._key_by_atom
        maybe: set[tuple[int, int]] = set()
        for w in view.words.intersection(self._gate_words):
            maybe.update(by_atom.get(w, ()))
        for p in view.prefixes(4).intersection(self._gate_pre4):
            maybe.update(by_atom.get(p, ()))
        if self._key_by_sub and self._gate_subs is not None and self._gate_subs.search(view.low) is not None:
            maybe.update(self._key_by_sub)
        groups = self._short_groups
        return not any(_short_holds(view, groups[i][j], self._rx) for i, j in maybe)

    def _index_keys(self) -> tuple[dict[str, tuple[tuple[int, int], ...]], tuple[tuple[int, int], ...]]:
        """The anchors behind each entry of the gate's word and word-start sets (:meth:`_gate`:
        the same key groups), and those whose key group has substrings."""
        by: dict[str, list[tuple[int, int]]] = {}
        by_sub: list[tuple[int, int]] = []
        for i, anchors in enumerate(self._complex):
            for j, anchor in enumerate(anchors):
                group, gsubs = _key_group(anchor)
                if gsubs:
                    by_sub.append((i, j))
                for kind, v in group:
                    keys = [v] if kind == "w" else [v, *(v + chr(c) for c in range(128))] if len(v) == 3 else [v[:4]]
                    for k in keys:
                        by.setdefault(k, []).append((i, j))
        return {k: tuple(dict.fromkeys(v)) for k, v in by.items()}, tuple(by_sub)

    def _index_anchors(self) -> None:
        """The look-ups :meth:`_awake` starts from: which signals each plain word wakes, and which
        (signal, anchor) pairs each atom of an anchor's first group may wake. Groups with
        substrings come last in an anchor (see :func:`_parse`): a first group with any means every
        group has some, and such anchors (a few) are always tried."""
        by_word: dict[str, list[int]] = {}
        for i, ws in enumerate(self._words):
            for w in ws:
                by_word.setdefault(w, []).append(i)
        self._by_word = {w: tuple(v) for w, v in by_word.items()}
        self._plain = frozenset(by_word)
        by_atom: dict[Atom, list[tuple[int, int]]] = {}
        unindexed: list[tuple[int, int]] = []
        for i, anchors in enumerate(self._complex):
            for j, anchor in enumerate(anchors):
                group, subs = anchor[0]
                if subs:
                    unindexed.append((i, j))
                for atom in () if subs else group:
                    by_atom.setdefault(atom, []).append((i, j))
        self._by_atom = {a: tuple(v) for a, v in by_atom.items()}
        self._unindexed = tuple(unindexed)

    def _pre3_present(self, view: TextView) -> set[str]:
        """The 3-character prefix atoms some word starts with: a word of exactly those 3
        characters, or a 4-character prefix that extends one (ASCII text: every character of its
        words is ASCII, and lower-casing never changes its length)."""
        if not view.low.isascii():
            return set(view.common_prefixes(self._atom_pre3, 3))
        by_ext = self._pre3_by_ext
        got = {by_ext[p] for p in view.common_prefixes(self._pre3_ext, 4)}
        got.update(view.common_words(self._atom_pre3))
        return got

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
            if self._quiet(view):
                return []  # most prompts: no tuple, set or call of _awake
            signals, present = self._awake_general(view)
            if not signals:
                return []
            rx = self._all_fast if len(signals) == len(self.weights) else self._regex_for(signals)
        else:
            rx = self._all
        spans = self._windows(view, signals, present) if anchored and view.lowered else None
        out: list[Hit] = []
        for ws, we, only in spans if spans is not None else ((0, len(low), ()),):
            # A window reads only the signals whose anchors are in it (see _windows).
            wrx = rx if not only or len(only) == len(signals) else self._regex_for(only)
            for m in wrx.finditer(low, ws, we):
                i = int((m.lastgroup or "s0")[1:])
                out.append(Hit(i, m.start(), m.end(), self.weights[i]))
        return out

    def _windows(self, view: TextView, signals: tuple[int, ...], present: set[Atom]) -> list[tuple[int, int, tuple[int, ...]]] | None:
        """Where the awake signals can match: around each occurrence of an anchor, as many
        whitespace-separated tokens either side as the signal's pattern can span. A match contains
        one of its anchors and at most ``gaps`` whitespace runs, so it lies inside such a window;
        windows start and end at whitespace, where ``\\b`` reads the same as in the whole text.
        Each (merged) window comes with the signals whose anchors made it: another signal's match
        there would hold one of its own anchor places, so its window would have been merged in;
        at every position of the window that signal fails, and leaving it out of the alternation
        changes no match (the window's regex tries fewer branches at each word start).
        None when that cannot be bounded or would cover most of the text (a full pass is cheaper)."""
        low = view.low
        found: dict[Atom, list[int]] = {}  # anchor occurrences, shared by the signals
        wins: list[tuple[int, int, int]] = []
        n = len(low)
        rev = ""
        for i in signals:
            reach = self._reach.get(self._gaps[i])
            places = self._places(view, i, present, found) if reach is not None else None
            if reach is None or places is None or len(wins) + len(places) > _MAX_PLACES:
                return None
            if places and not rev:
                rev = low[::-1]
            wins += [(n - _end(reach, rev, n - 1 - p), _end(reach, low, p), i) for p in places]
        wins.sort()
        spans: list[tuple[int, int, set[int]]] = []
        for ws, we, i in wins:
            if spans and ws <= spans[-1][1]:
                last = spans[-1]
                last[2].add(i)
                spans[-1] = (last[0], max(last[1], we), last[2])
            else:
                spans.append((ws, we, {i}))
        if sum(we - ws for ws, we, _ in spans) >= n // 2:
            return None
        return [(ws, we, tuple(sorted(only))) for ws, we, only in spans]

    def _places(self, view: TextView, i: int, present: set[Atom], found: dict[Atom, list[int]]) -> list[int] | None:
        """Occurrences of the anchors of signal ``i`` that the text has; for an "a&b" anchor, of
        whichever group occurs least."""
        low = view.low
        options = [("w", w) for w in view.common_words(self._words[i])]
        for anchor in self._complex[i]:
            held: list[list[tuple[str, str]]] = []
            for group, subs in anchor:
                if subs and subs[0][:1] == _GATE:
                    # A gate gives no places (the anchor's other groups do); it only has to hold.
                    if not view.search(*self._rx[subs[0]]):
                        break
                    continue
                # ``present`` (from :meth:`_awake`) holds every word and prefix atom the text has.
                atoms = [*group.intersection(present), *(("sub", v) for v in subs if view.contains(v))]
                if not atoms:
                    break  # this anchor does not hold: no match through it
                held.append(atoms)
            else:
                options += held[0] if len(held) == 1 else _rarest(low, held, found)
        places = [p for k, v in options for p in _find_all(low, v, k, found)]
        return places if len(places) <= _MAX_PLACES else None


# A group of an anchor as the short-text gate tests it (see _short_group).
ShortGroup = tuple[frozenset[str], frozenset[str], tuple[str, ...], tuple[str, ...]]


def _short_group(group: tuple[frozenset[Atom], tuple[str, ...]]) -> ShortGroup:
    """A group's atoms as (words, 4-character word starts, longer prefixes, substrings) for
    :func:`_short_holds`, as :meth:`Lexicon._awake` reads them on ASCII text: a 3-character prefix
    atom is the word itself or any 4-character start extending it by an ASCII character, a
    4-character one that start, a longer one its first four and then a search."""
    atoms, subs = group
    words = {v for k, v in atoms if k == "w" or len(v) == 3}
    starts = {v + chr(c) for k, v in atoms if k == "pre" and len(v) == 3 for c in range(128)}
    starts.update(v for k, v in atoms if k == "pre" and len(v) == 4)
    longer = tuple(sorted(v for k, v in atoms if k == "pre" and len(v) > 4))
    return frozenset(words), frozenset(starts), longer, subs


def _short_holds(view: TextView, anchor: tuple[ShortGroup, ...], rx: dict[str, tuple[re.Pattern[str], bool]]) -> bool:
    """Whether every group of ``anchor`` holds in a short ASCII ``view``, as :meth:`Lexicon._awake`
    decides it: a word atom is a word of the text, a prefix atom starts one, a substring occurs in
    ``low``, a regex gate matches. Set tests at C speed (a group may list ~80 group names)."""
    words = view.words
    for group_words, starts, longer, subs in anchor:
        if not group_words.isdisjoint(words) or (starts and not starts.isdisjoint(view.prefixes(4))):
            continue
        if longer and any(view.starts_word(v) for v in longer):
            continue
        if subs and (view.search(*rx[subs[0]]) if subs[0][:1] == _GATE else any(map(view.contains, subs))):
            continue
        return False
    return True


def first_char_buckets(pattern: str) -> str:
    """``pattern`` with its leading alternation (``\\b(?:a|b|...)rest``) grouped by first character:
    ``\\b(?:b(?:lacks?|rown)|w(?:hites?|omen)|...)rest``. The engine tries an alternation's branches
    in order at each position, and skips at once only a branch that starts with a character other
    than the text's; a signal that starts with ~60 group names paid ~0.3 µs at every word start of
    its windows. An alternative can only match where the text has its first character, so
    alternatives with different first characters never compete, and keeping the order within
    each first character keeps every match (and which alternative makes it). A leading group of
    plain alternatives is distributed first (``(?:these|those)\\s+people`` -> ``these\\s+people|
    those\\s+people``: the same attempts in the same order), and an alternative's own leading ``\\b``
    dropped (it holds there already). Patterns that do not have that shape (an alternative
    starting with another escape, a class, a quantified character or another kind of group;
    back-references) are returned as they are.

        >>> first_char_buckets(r"\\b(?:ab|b|(?:ax|c)y)z")
        '\\\\b(?:a(?:b|xy)|b(?:)|c(?:y))z'
    """
    if not pattern.startswith("\\b(?:") or re.search(r"\\[1-9]|\(\?P=", pattern):
        return pattern
    end = _group_end(pattern, 2)
    rest = pattern[end + 1:] if end is not None else "?"
    alts = _literal_led(pattern[5:end]) if end is not None and rest[:1] not in ("?", "*", "+", "{") else None
    if alts is None:
        return pattern
    buckets: dict[str, list[str]] = {}
    for alt in alts:
        buckets.setdefault(alt[0], []).append(alt[1:])
    out = "\\b(?:" + "|".join(re.escape(c) + "(?:" + "|".join(tails) + ")" for c, tails in buckets.items()) + ")" + rest
    try:
        re.compile(out)
    except re.error:  # a named group distributed twice
        return pattern
    return out


def _bucketed(pattern: str) -> str:
    """:func:`first_char_buckets` for a lexicon signal, which is only ever compiled after a ``\\b``
    (:meth:`Lexicon._compile`): there ``p`` and ``\\b(?:p)`` match alike, so a signal written as
    ``\\bdo\\s+anything|\\bdan\\s+mode|...`` is grouped too."""
    if pattern.startswith("\\b(?:"):
        return first_char_buckets(pattern)
    wrapped = "\\b(?:" + pattern + ")"
    fast = first_char_buckets(wrapped)
    return fast if fast != wrapped else pattern


def _literal_led(alternation: str) -> list[str] | None:
    """The alternatives of ``alternation``, each starting with a plain character, leading groups of
    alternatives distributed over what follows them (None: some alternative cannot be). Each
    starts where the ``\\b`` before the alternation holds, so its own leading ``\\b`` is dropped."""
    out: list[str] = []
    for alt in split_alternatives(alternation):
        if alt.startswith("\\b"):
            alt = alt[2:]
        if alt.startswith("(?:"):
            end = _group_end(alt, 0)
            if end is None or alt[end + 1:end + 2] in ("?", "*", "+", "{"):
                return None
            inner = _literal_led(alt[3:end])
            if inner is None:
                return None
            out += [a + alt[end + 1:] for a in inner]
        elif alt and alt[0] not in "\\()[]{}.^$|?*+" and alt[1:2] not in ("?", "*", "+", "{"):
            out.append(alt)
        else:
            return None
    return out


def _group_end(pattern: str, start: int) -> int | None:
    """The index of the ``)`` closing the group opened at ``start`` (escapes and classes skipped)."""
    for i, ch, depth in structure(pattern, start):
        if ch == ")" and depth == 0:
            return i
    return None


def _end(rx: re.Pattern[str], text: str, pos: int) -> int:
    m = rx.match(text, pos)  # always matches (it may match nothing)
    return m.end() if m is not None else pos


def _rarest(low: str, held: list[list[Atom]], found: dict[Atom, list[int]]) -> list[Atom]:
    """The group whose atoms occur least (any one group will do: a match holds all of them).
    Each group's occurrences are looked for only up to the best count so far, so a common word
    ("you", "what") costs a partial scan, and the winner's positions are already cached. Groups
    with fewer atoms in the text are tried first: the likely winners, and the sooner the best
    count is small, the sooner the other searches stop."""
    held = sorted(held, key=len)
    best, best_n = held[0], _MAX_PLACES + 1
    for atoms in held:
        n = 0
        for k, v in atoms:
            n += len(_find_all(low, v, k, found, best_n - n))
            if n >= best_n:
                break
        if n < best_n:
            best, best_n = atoms, n
            if n == 0:
                break  # no match can hold this group: nothing to scan
    return best


def _find_all(low: str, atom: str, kind: str, found: dict[Atom, list[int]], limit: int = _MAX_PLACES) -> list[int]:
    """Where a word (``kind`` "w": whole), a word start ("pre") or a substring ("sub") occurs.
    The search stops after ``limit + 1`` places; a list cut short by a ``limit`` under
    :data:`_MAX_PLACES` is only a count that says "more than the best": it is kept apart, under
    ``kind + "~"`` with the position to resume from first, so a later search goes on from there."""
    # Keyed by kind too: a word's places are fewer than the same string's as a prefix.
    got = found.get((kind, atom))
    if got is not None:
        return got
    part = found.get((kind + "~", atom))
    if part is not None:
        pos, got = part[0], part[1:]
        if len(got) > limit:
            return got
    else:
        pos, got = low.find(atom), []
    end = len(atom)
    last = len(low) - end  # where an occurrence ends the text
    sub, pre = kind == "sub", kind == "pre"
    while pos != -1 and len(got) <= limit:
        # Word edges as \b sees them (inline: a call per occurrence costs more than the test);
        # a word occurrence keeps a superset of the real ones.
        if sub or ((pos == 0 or not ((c := low[pos - 1]).isalnum() or c == "_"))
                   and (pre or pos == last or not ((c := low[pos + end]).isalnum() or c == "_"))):
            got.append(pos)
        pos = low.find(atom, pos + 1)
    if pos == -1 or limit >= _MAX_PLACES:
        found[kind, atom] = got
    else:
        found[kind + "~", atom] = [pos, *got]
    return got


def max_gaps(pattern: str) -> int | None:
    """The most whitespace runs a match of ``pattern`` can hold (None: no bound)."""
    return _gaps(_parser.parse(pattern))


def _gaps(items: Any) -> int | None:
    total = 0
    for op, arg in items:
        g = _gaps_of(op, arg)
        if g is None:
            return None
        total += g
    return total


def _gaps_of(op: Any, arg: Any) -> int | None:
    c = _constants
    if op in (c.AT, c.ASSERT, c.ASSERT_NOT):
        return 0  # zero-width
    if op in (c.LITERAL, c.NOT_LITERAL, c.ANY, c.IN, c.CATEGORY):
        return 1 if _may_be_space(op, arg) else 0
    if op == c.SUBPATTERN:
        return _gaps(arg[-1])
    if op == c.BRANCH:
        counts = [_gaps(b) for b in arg[1]]
        return None if any(x is None for x in counts) else max(x for x in counts if x is not None)
    if op in (c.MAX_REPEAT, c.MIN_REPEAT, getattr(c, "POSSESSIVE_REPEAT", None)):
        _lo, hi, sub = arg
        inner = _gaps(sub)
        if inner == 0 or inner is None:
            return inner
        if _only_space(sub):
            return 1  # a run of whitespace is one run however long
        return None if hi == c.MAXREPEAT else inner * hi
    return None  # back-references and the like: no bound claimed


def _may_be_space(op: Any, arg: Any) -> bool:
    c = _constants
    if op == c.LITERAL:
        return chr(arg).isspace()
    if op == c.CATEGORY:
        return arg in (c.CATEGORY_SPACE, c.CATEGORY_NOT_WORD, c.CATEGORY_NOT_DIGIT)
    if op == c.IN:
        return any(o == c.NEGATE or _may_be_space(o, a) if o != c.RANGE else any(chr(x).isspace() for x in range(a[0], a[1] + 1))
                   for o, a in arg)
    return True  # ANY, NOT_LITERAL


def _only_space(items: Any) -> bool:
    c = _constants
    return all((op == c.CATEGORY and arg == c.CATEGORY_SPACE) or (op == c.LITERAL and chr(arg).isspace())
               or (op == c.IN and all(o == c.CATEGORY and a == c.CATEGORY_SPACE for o, a in arg)) for op, arg in items)


Atom = tuple[str, str]  # (kind, value): ("w", "ignore"), ("pre", "foo"), ("sub", "]")


# Words too common in ordinary prose to gate on (a text without the anchor's other words cannot
# wake it, and those are rarer): used only to choose which group of an anchor the gate tests.
_COMMON = frozenset((
    "a", "all", "an", "and", "are", "as", "at", "back", "be", "by", "can", "do", "for", "go", "have", "he", "her", "here", "i",
    "in", "is", "it", "its", "just", "let", "more", "must", "need", "new", "no", "not", "now", "of", "off", "on", "only", "out",
    "over", "put", "say", "she", "should", "so", "that", "the", "them", "they", "this", "to", "up", "us", "we", "what",
    "who", "will", "with", "you", "your",
))


def _key_group(anchor: tuple[tuple[frozenset[Atom], tuple[str, ...]], ...]) -> tuple[frozenset[Atom], tuple[str, ...]]:
    """The group of an anchor that a gate tests: the fewest common or very short options, then
    the fewest options (substring options count double: each is a scan of the text)."""
    def cost(g: tuple[frozenset[Atom], tuple[str, ...]]) -> tuple[int, int]:
        if g[1][:1] and g[1][0][:1] == _GATE:
            return 1 << 30, 0  # a regex: never the gate's key (an anchor always has another group)
        opts = [v for _, v in g[0]] + list(g[1])
        return sum(v in _COMMON or (len(v) <= 2 and v.isalnum()) for v in opts), len(g[0]) + 2 * len(g[1])
    return min(anchor, key=cost)


def _any_of(subs: Sequence[str]) -> re.Pattern[str] | None:
    """One search for any of ``subs`` (None: there are none): a literal alternation finds a match
    exactly where one occurs, and on a short text costs about half of a ``in`` test per string.
    A string holding another of them is left out (where it occurs, so does the shorter one)."""
    uniq = set(subs)
    kept = sorted(s for s in uniq if not any(t != s and t in s for t in uniq))
    return re.compile("|".join(map(re.escape, kept))) if kept else None


def _is_word(anchor: str) -> bool:
    return ":" not in anchor and "&" not in anchor and "|" not in anchor


def _parse(anchor: str) -> tuple[tuple[frozenset[Atom], tuple[str, ...]], ...]:
    """"a|b&c" -> groups (a, b) and (c,): all of the groups, any option within one; each group
    split into its set-checked atoms and its substrings; groups with substrings go last, then the
    regex gates (``"re:..."``: no atoms, the regex after :data:`_GATE` as the one "substring")."""
    groups: list[tuple[frozenset[Atom], tuple[str, ...]]] = []
    for group in anchor.split("&"):
        if group.startswith(("re:", "nre:")):
            # The gate's key: the NUL, "l" (searched in the lower-cased text) or "n" (normalised), the regex.
            kind, _, rx = group.partition(":")
            groups.append((frozenset(), (_GATE + ("n" if kind == "nre" else "l") + _gate_regex(rx, anchor),)))
            continue
        options: list[Atom] = []
        for o in group.split("|"):
            kind, _, value = o.rpartition(":")
            if kind not in ("", "pre", "sub") or not value or (kind == "pre" and len(value) < 3):
                raise ValueError(f"bad anchor {o!r} in {anchor!r}")
            options.append((kind or "w", value))
        groups.append((frozenset(o for o in options if o[0] != "sub"), tuple(v for k, v in options if k == "sub")))
    if all(subs[:1] and subs[0][:1] == _GATE for _, subs in groups):
        raise ValueError(f"anchor {anchor!r} has only regex gates: it needs a group of words to place its windows")
    return tuple(sorted(groups, key=lambda g: 0 if not g[1] else 2 if g[1][0][:1] == _GATE else 1))


# Marks a group's regex gate among substrings (no anchor substring holds a NUL).
_GATE = "\0"


def _gate_regex(rx: str, anchor: str) -> str:
    """``rx`` if it compiles and starts with two plain characters, which the engine finds at C
    speed before trying the rest (a gate without them would cost a regex pass over the text)."""
    try:
        items = list(_parser.parse(rx))
    except re.error as exc:
        raise ValueError(f"bad regex gate {rx!r} in {anchor!r}: {exc}") from None
    if len(items) < 2 or any(op is not _constants.LITERAL for op, _ in items[:2]):
        raise ValueError(f"regex gate {rx!r} in {anchor!r} must start with two plain characters")
    return rx


def combine(weights: Sequence[float]) -> float:
    p = 1.0
    for w in weights:
        p *= 1.0 - w
    return 1.0 - p
