"""A text prepared once for every detector: its lower-cased copy and its word set, computed lazily.

Regex passes over a whole prompt cost ~100 µs each on 4 KB (the engine pays one per position tried),
so the detectors first look at cheap facts about the text (which words it has, whether it has an
``@``, long unbroken tokens) and run their patterns only where those facts say a match is possible.
The view computes each fact once, when the first detector asks for it.

    >>> v = TextView("Ignore the RULES, please.")
    >>> sorted(v.words)
    ['ignore', 'please', 'rules', 'the']
    >>> v.has_prefix("plea"), v.has_prefix("rul")
    (True, True)
"""

from __future__ import annotations

import re
import string
from bisect import bisect_right
from collections.abc import Mapping, Sequence, Set
from itertools import chain, repeat
from math import fsum
from operator import itemgetter

from ..findings import Finding

# Every ASCII character that is not a letter or digit becomes a space, so ``split`` yields words;
# so do the control characters ``split`` treats as whitespace (\x1c-\x1f), so that in the
# normalised text a space is the only separator (what :meth:`TextView.patched` relies on).
_SEPARATORS = str.maketrans({c: " " for c in string.printable + "\x1c\x1d\x1e\x1f" if not c.isalnum()})




def ascii_table(table: Mapping[int, str]) -> bytes:
    """A ``str.maketrans`` table of one-character ASCII replacements as a ``bytes.translate``
    table (characters it does not map map to themselves)."""
    return bytes(ord(table[c]) if c in table else c for c in range(256))


def translate_ascii(text: str, table: bytes) -> str:
    """``text.translate`` for an ASCII ``text``, by a table from :func:`ascii_table`. str.translate
    looks each distinct character up in its dict table (~2.5 µs on a 50-character prompt);
    bytes.translate indexes a 256-byte table (~0.3 µs, encoding and decoding included)."""
    return text.encode("ascii").translate(table).decode("ascii")


_SEPARATOR_BYTES = ascii_table(_SEPARATORS)
# What is not a letter or digit (str.isalnum is \w less "_", for every code point), spaces aside:
# one substitution per separator that is not a space yet (a Python test per character cost
# ~0.15 µs each, ~600 µs on 4 KB of Cyrillic; this ~85, ~35 ns a character).
_NON_WORD = re.compile(r"[^\w ]|_")
# Every ASCII character that is not a letter or digit -> " ", but "?" kept (see _normalise_sparse).
_SEPARATOR_OR_Q = bytes(c if chr(c).isalnum() or c == ord("?") else ord(" ") for c in range(256))
_SPARSE = 16  # at most one character in this many beyond ASCII: _normalise_sparse


def _normalise_sparse(low: str) -> str | None:
    """``low`` (not ASCII) with every character that is not a letter or digit a space, when few
    of its characters are beyond ASCII (prose with curly quotes, dashes, emoji, a foreign name):
    the ASCII ones by one byte-table translation of its ASCII copy, where each other one is a "?"
    to find and look at. None when there are too many (a regex substitution is then cheaper)."""
    copy = low.encode("ascii", "replace")
    if copy.count(b"?") * _SPARSE > len(copy):
        return None
    plain = copy.translate(_SEPARATOR_OR_Q).decode("ascii")
    parts: list[str] = []
    pos = 0
    at = plain.find("?")
    while at != -1:
        c = low[at]
        parts += (plain[pos:at], c if c.isalnum() else " ")  # a real "?" is not alphanumeric
        pos = at + 1
        at = plain.find("?", pos)
    parts.append(plain[pos:])
    return "".join(parts)
_FIRST3 = itemgetter(slice(None, 3))
_FIRST4 = itemgetter(slice(None, 4))

_LONG = 12
# Up to this many characters, TextView.contains tests the text directly, without its memo.
_SHORT = 256
# An ASCII text's whitespace (what ``str.split`` splits on) as " ", any other character as "x".
_SPACE_SHAPE = str.maketrans({chr(c): " " if chr(c).isspace() else "x" for c in range(128)})
_SPACE_SHAPE_BYTES = ascii_table(_SPACE_SHAPE)
_RUN = "x" * _LONG


class TextView:
    __slots__ = ("_found", "_has", "_long", "_norm", "_p3", "_p4", "_patch", "_vocab", "_words", "low", "lowered", "text")

    def __init__(self, text: str, low: str | None = None) -> None:
        self.text = text
        # Computed at once, as plain attributes: every detector reads them, ~12 times per scan,
        # and a property call each cost more than the lower-casing of a short prompt.
        if low is None:
            low = text.lower()
            # The text itself when lowering would change its length (offsets must stay valid),
            # which only some non-ASCII letters do.
            same = len(low) == len(text)
            low = low if same else text
            #: ``low`` is really the lower-cased text (not the text kept for its offsets).
            self.lowered = same or text.islower() or not text
        else:
            self.lowered = True
        #: The lower-cased text (see above).
        self.low = low
        self._norm: str | None = None
        self._words: frozenset[str] | None = None
        self._p3: frozenset[str] | None = None
        self._p4: frozenset[str] | None = None
        self._long: list[tuple[int, int]] | None = None
        self._patch: _Patch | None = None
        self._has: dict[str, bool] = {}
        self._vocab: str | None = None
        self._found: dict[tuple[re.Pattern[str], bool], bool] | None = None  # search(): regex gates, made on first use

    def contains(self, sub: str) -> bool:
        """``sub`` occurs in ``low``: each substring is looked for once per view, whichever
        detector asks (a miss scans the whole text: ~2.5 µs on 4 KB). A string of letters and
        digits can only occur inside one word, so it is looked for in the distinct words joined
        by spaces instead (about half the text, in prose)."""
        low = self.low
        if len(low) <= _SHORT:
            # Where ``sub`` is looked for does not change the answer: a string of letters and
            # digits in ``low`` lies inside one word (a run of non-separators), and a word is a
            # piece of ``low``. On a short text the direct test costs less than the memo.
            return sub in low
        hit = self._has.get(sub)
        if hit is None:
            if not sub.isalnum():
                # One of its separators first: a single character is found at memchr speed.
                sep = next(c for c in sub if not c.isalnum()) if sub else sub
                hit = (len(sub) <= 1 or self.contains(sep)) and sub in self.low
            elif self._patch is not None:
                hit = self._patch.contains(sub, self)
            else:
                hit = sub in self.vocabulary
            self._has[sub] = hit
        return hit

    def search(self, rx: re.Pattern[str], normalised: bool = False) -> bool:
        """``rx`` matches somewhere in ``low`` (or in :attr:`normalised`), looked for once per view
        whichever detector asks (a lexicon asks again when it places the windows of a signal the
        gate woke)."""
        if self._found is None:
            self._found = {}
        key = (rx, normalised)
        hit = self._found.get(key)
        if hit is None:
            hit = self._found[key] = rx.search(self.normalised if normalised else self.low) is not None
        return hit

    @property
    def vocabulary(self) -> str:
        """The distinct words joined by spaces (in no particular order)."""
        if self._vocab is None:
            self._vocab = " ".join(self.words)
        return self._vocab

    def patched(self, low: str, changed: Sequence[tuple[int, int]]) -> TextView:
        """A view of ``low``: this view's lower-cased text with the characters inside ``changed``
        (sorted, disjoint spans) replaced by letters or digits, same length. Its words and prefixes
        are derived from this view's by re-reading only the words around the changes (a toxicity
        scan's de-obfuscated copy differs in a few words; rebuilding its word and prefix sets
        would cost ~100 µs on 4 KB)."""
        view = TextView(low, low)
        view._patch = _Patch(self, changed)
        # A letter or digit is its own normalised form: splice the changes into this view's.
        norm = self.normalised
        parts: list[str] = []
        pos = 0
        for s, e in changed:
            parts += (norm[pos:s], low[s:e])
            pos = e
        parts.append(norm[pos:])
        view._norm = "".join(parts)
        return view

    @property
    def words(self) -> frozenset[str]:
        """The distinct lower-case words (runs of letters and digits; non-ASCII letters stay in).
        A patched view builds this set only when asked: the detectors ask the questions below,
        which a patch answers from its base's sets and its few changed words."""
        if self._words is None:
            self._words = self._patch.words(self) if self._patch is not None else frozenset(self.normalised.split())
        return self._words

    @property
    def is_patched(self) -> bool:
        return self._patch is not None

    def common_words(self, s: frozenset[str]) -> Set[str]:
        """``s & words``."""
        if self._patch is None or self._words is not None:
            return s.intersection(self.words)
        return self._patch.common(s, self, 0)

    def has_word_in(self, s: frozenset[str]) -> bool:
        """``not s.isdisjoint(words)``."""
        if self._patch is None or self._words is not None:
            return not s.isdisjoint(self.words)
        return self._patch.has_any(s, self)

    def common_prefixes(self, s: frozenset[str], n: int) -> Set[str]:
        """``s & prefixes(n)``."""
        if self._patch is None or (self._p4 if n == 4 else self._p3) is not None:
            return s.intersection(self.prefixes(n))
        return self._patch.common(s, self, n)

    def word_sum(self, weights: Mapping[str, float]) -> float:
        """The exact sum (``fsum``) of ``weights`` over the words, absent ones 0.0. Exact, so it
        does not depend on the words' order, nor on a patched view summing its base's words, the
        removed ones negated, and the added ones, instead of a set of its own."""
        if self._patch is None or self._words is not None:
            return fsum(map(weights.get, self.words, repeat(0.0)))
        return self._patch.word_sum(weights, self)

    @property
    def normalised(self) -> str:
        """``low`` with every character that separates words turned into a space (same length)."""
        if self._norm is None:
            low = self.low
            if low.isascii():
                self._norm = translate_ascii(low, _SEPARATOR_BYTES)
            else:
                # Unicode punctuation (dashes, curly quotes) must separate words as \b does.
                self._norm = _normalise_sparse(low) or _NON_WORD.sub(" ", low)
        return self._norm

    def prefixes(self, n: int) -> frozenset[str]:
        """The first ``n`` (3 or 4) characters of every word."""
        if n == 3:
            if self._p3 is None:
                # From the 4-character prefixes when they are there: fewer strings to cut.
                self._p3 = (self._patch.prefixes(3, self) if self._patch is not None
                            else frozenset(map(_FIRST3, self._p4 if self._p4 is not None else self.words)))
            return self._p3
        if self._p4 is None:
            # map with an itemgetter: no Python frame per word (~25% less than a set comprehension).
            self._p4 = self._patch.prefixes(4, self) if self._patch is not None else frozenset(map(_FIRST4, self.words))
        return self._p4

    def has_prefix(self, prefix: str) -> bool:
        """Some word starts with ``prefix`` (at least 3 characters)."""
        n = min(len(prefix), 4)
        if not self.common_prefixes(frozenset((prefix[:n],)), n):
            return False
        return len(prefix) <= 4 or self.starts_word(prefix)

    def starts_word(self, prefix: str) -> bool:
        """Some word starts with ``prefix`` (any length; :meth:`has_prefix` without its test of
        the first four characters, for a caller that knows they start a word)."""
        if self._patch is None or self._words is not None:
            return self._starts_word(prefix)
        return self._patch.has_word_starting(prefix, self)

    def _starts_word(self, prefix: str) -> bool:
        """Some word starts with ``prefix``: in the distinct words joined by spaces, at the start or
        after a space (one C-speed search, memoised; a loop over ~300 words cost ~10 µs). Keyed
        apart from the substrings by a leading \x01, which no anchor or gate string holds."""
        norm = self.normalised
        if len(norm) <= _SHORT:
            # In the normalised text a word starts at 0 or after a space, as in the vocabulary.
            return norm.startswith(prefix) or (" " + prefix) in norm
        key = "\x01" + prefix
        hit = self._has.get(key)
        if hit is None:
            vocab = self.vocabulary
            hit = self._has[key] = vocab.startswith(prefix) or (" " + prefix) in vocab
        return hit

    def long_tokens(self) -> list[tuple[int, int]]:
        """Spans of whitespace-free runs of at least 12 characters that are not plain lower-case
        words: where every token-shaped secret must lie (the shortest, ``ab://u:pwd@h``, has 12)."""
        if self._long is None:
            self._long = _long_tokens_ascii(self.text) if self.text.isascii() else _long_tokens(self.text)
        return self._long


def _long_tokens(text: str) -> list[tuple[int, int]]:
    """:meth:`TextView.long_tokens` on any text (``str.split``'s Unicode whitespace)."""
    spans: list[tuple[int, int]] = []
    pos = 0
    # The length filter first, as one comprehension: most of the ~700 tokens of 4 KB are short.
    for tok in [t for t in text.split() if len(t) >= _LONG]:
        if not (tok.isalpha() and tok.islower()):
            start = text.find(tok, pos)
            spans.append((start, start + len(tok)))
            pos = start + len(tok)
    return spans


def _long_tokens_ascii(text: str) -> list[tuple[int, int]]:
    """:func:`_long_tokens` on ASCII text without splitting it into ~700 strings (~50 µs on 4 KB):
    its whitespace shape (one C-speed translate) holds a run of 12 non-spaces exactly where a long
    token starts, and the leftmost such run is its first 12 characters, so only the ~15 long
    tokens of a prompt are visited."""
    shape = translate_ascii(text, _SPACE_SHAPE_BYTES)
    spans: list[tuple[int, int]] = []
    start = shape.find(_RUN)
    while start != -1:
        end = shape.find(" ", start + _LONG)
        end = len(text) if end == -1 else end
        tok = text[start:end]
        if not (tok.isalpha() and tok.islower()):
            spans.append((start, end))
        start = shape.find(_RUN, end)
    return spans


class _Patch:
    """How a patched view's words differ from its base's. Every change turns a separator or a digit
    into a letter or digit, so the changed words are read again in the new text (``added``) and a
    base word that occurred only there is gone (``removed``). Regions are cut at spaces of the new
    normalised text, which are spaces of the old one too (a change never makes a space), so no
    word straddles a region's edge and the words outside the regions are the same in both.

    The patched view's word and prefix sets are the base's less what is gone plus what is added;
    :meth:`common`, :meth:`has_any` and :meth:`word_sum` answer from those parts, so the sets
    themselves (copies of ~300 words and ~300 prefixes) are built only if someone asks for them."""

    __slots__ = ("_added", "_base", "_changed", "_delta", "_outside", "_ready", "_removed")

    def __init__(self, base: TextView, changed: Sequence[tuple[int, int]]) -> None:
        self._base = base
        self._changed = changed
        self._added: frozenset[str] = frozenset()
        self._removed: frozenset[str] = frozenset()
        self._outside = ""
        self._ready = False
        # n -> (prefixes of added words, base prefixes only removed words had); n = 0: the words.
        self._delta: dict[int, tuple[frozenset[str], frozenset[str]]] = {}

    def _read(self, view: TextView) -> None:
        """Find the added and removed words (once)."""
        if self._ready:
            return
        new = view.normalised
        old = self._base.normalised
        regions: list[tuple[int, int]] = []
        for s, e in self._changed:
            b = new.find(" ", e)
            b = len(new) if b == -1 else b
            if regions and s < regions[-1][1]:
                regions[-1] = (regions[-1][0], max(regions[-1][1], b))  # the same word as the last change
            else:
                regions.append((new.rfind(" ", 0, s) + 1, b))
        added: set[str] = set()
        candidates: set[str] = set()
        parts: list[str] = []
        pos = 0
        for a, b in regions:
            added.update(new[a:b].split())
            candidates.update(old[a:b].split())
            parts.append(old[pos:a])
            pos = b
        parts.append(old[pos:])
        # Padded with spaces so " word " finds a whole word at either end too.
        self._outside = outside = " " + " ".join(parts) + " "
        self._removed = frozenset(c for c in candidates if f" {c} " not in outside)
        self._added = frozenset(added)
        self._delta[0] = (self._added, self._removed)
        self._ready = True

    def _parts(self, view: TextView, n: int) -> tuple[frozenset[str], frozenset[str]]:
        """(added, gone) for the words (n = 0) or their first ``n`` characters."""
        self._read(view)
        got = self._delta.get(n)
        if got is None:
            added = frozenset({w[:n] for w in self._added})
            gone = frozenset(p for p in {w[:n] for w in self._removed} - added
                             if (f" {p} " if len(p) < n else f" {p}") not in self._outside)
            got = self._delta[n] = (added, gone)
        return got

    def _base_set(self, n: int) -> frozenset[str]:
        return self._base.words if n == 0 else self._base.prefixes(n)

    def common(self, s: frozenset[str], view: TextView, n: int) -> Set[str]:
        """``s`` & the patched view's words (n = 0) or prefixes."""
        added, gone = self._parts(view, n)
        kept = s.intersection(self._base_set(n))
        if gone and not kept.isdisjoint(gone):
            kept = kept - gone
        new = s.intersection(added) if added else added
        return kept | new if new else kept

    def has_any(self, s: frozenset[str], view: TextView) -> bool:
        """Some word of ``s`` is a word of the patched view."""
        added, gone = self._parts(view, 0)
        if not s.isdisjoint(added):
            return True
        base = self._base.words
        if s.isdisjoint(base):
            return False
        return not gone or any(w not in gone for w in s.intersection(base))

    def has_word_starting(self, prefix: str, view: TextView) -> bool:
        """Some patched word starts with ``prefix``: an added one, or a base one not removed (the
        base answers by one search; only when a removed word starts so are the base words read)."""
        added, gone = self._parts(view, 0)
        if any(w.startswith(prefix) for w in added):
            return True
        if not self._base._starts_word(prefix):
            return False
        if not any(w.startswith(prefix) for w in gone):
            return True
        return any(w.startswith(prefix) and w not in gone for w in self._base.words)

    def word_sum(self, weights: Mapping[str, float], view: TextView) -> float:
        """:meth:`TextView.word_sum` of the patched words: the base's words, the removed ones
        subtracted and the added ones (not already counted) added, in one exact sum."""
        added, gone = self._parts(view, 0)
        base = self._base.words
        get = weights.get
        extra = [get(w, 0.0) for w in added if w in gone or w not in base]
        extra += [-get(w, 0.0) for w in gone]
        return fsum(chain(map(get, base, repeat(0.0)), extra))

    def words(self, view: TextView) -> frozenset[str]:
        """The words of the patched ``view``, as a set of its own."""
        added, gone = self._parts(view, 0)
        kept = self._base.words - gone if gone else self._base.words
        return kept if added <= kept else kept | added

    def contains(self, sub: str, view: TextView) -> bool:
        """``sub`` (letters and digits) is inside one of the patched ``view``'s words, answered
        from the base's memo and the few changed words, so the patched view needs no vocabulary
        string of its own (~12 µs on 4 KB). A base word holding ``sub`` that is not removed is
        still there; only when every holder may be removed are the new words read."""
        added, gone = self._parts(view, 0)
        if any(sub in w for w in added):
            return True
        if not self._base.contains(sub):
            return False
        if not any(sub in w for w in gone):
            return True
        return sub in view.vocabulary

    def prefixes(self, n: int, view: TextView) -> frozenset[str]:
        """The new words' first ``n`` characters: the base's, less those only removed words had."""
        added, gone = self._parts(view, n)
        kept = self._base.prefixes(n) - gone if gone else self._base.prefixes(n)
        return kept if added <= kept else kept | added


class Joined:
    """Spans of a text joined by single spaces, so a pattern that cannot match a space runs once
    over all of them; :meth:`back` maps a finding on the joined string to the text's offsets.

        >>> j = Joined("ab  cd ef", [(0, 2), (4, 6)])
        >>> j.text, j.back(Finding("secret", 3, 5, 1.0)).start
        ('ab cd', 4)
    """

    __slots__ = ("_at", "_starts", "text")

    def __init__(self, text: str, spans: list[tuple[int, int]]) -> None:
        if len(spans) == 1:
            s, e = spans[0]
            self.text = text[s:e] if (s, e) != (0, len(text)) else text
        else:
            self.text = " ".join([text[s:e] for s, e in spans])
        self._at = [s for s, _ in spans]
        starts: list[int] = []
        pos = 0
        for s, e in spans:
            starts.append(pos)
            pos += e - s + 1
        self._starts = starts

    def back(self, f: Finding) -> Finding:
        i = bisect_right(self._starts, f.start) - 1
        shift = self._at[i] - self._starts[i]
        return Finding(f.category, f.start + shift, f.end + shift, f.score, f.type, f.rule) if shift else f
