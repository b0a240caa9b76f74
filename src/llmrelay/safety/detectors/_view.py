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

import string
from bisect import bisect_right

from ..findings import Finding

# Every ASCII character that is not a letter or digit becomes a space, so ``split`` yields words.
_SEPARATORS = str.maketrans({c: " " for c in string.printable if not c.isalnum()})


_LONG = 12


class TextView:
    __slots__ = ("_long", "_low", "_p3", "_p4", "_words", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._low: str | None = None
        self._words: frozenset[str] | None = None
        self._p3: frozenset[str] | None = None
        self._p4: frozenset[str] | None = None
        self._long: list[tuple[int, int]] | None = None

    @property
    def low(self) -> str:
        """The lower-cased text; the text itself when lowering would change its length (offsets
        must stay valid), which only some non-ASCII letters do."""
        if self._low is None:
            low = self.text.lower()
            self._low = low if len(low) == len(self.text) else self.text
        return self._low

    @property
    def lowered(self) -> bool:
        """``low`` is really the lower-cased text (not the text kept for its offsets)."""
        return self.low is not self.text or self.text.islower() or not self.text

    @property
    def words(self) -> frozenset[str]:
        """The distinct lower-case words (runs of letters and digits; non-ASCII letters stay in)."""
        if self._words is None:
            low = self.low
            if not low.isascii():
                # Unicode punctuation (dashes, curly quotes) must separate words as \b does.
                low = "".join(c if c.isalnum() else " " for c in low)
            self._words = frozenset(low.translate(_SEPARATORS).split())
        return self._words

    def prefixes(self, n: int) -> frozenset[str]:
        """The first ``n`` (3 or 4) characters of every word."""
        if n == 3:
            if self._p3 is None:
                self._p3 = frozenset({w[:3] for w in self.words})
            return self._p3
        if self._p4 is None:
            self._p4 = frozenset({w[:4] for w in self.words})
        return self._p4

    def has_prefix(self, prefix: str) -> bool:
        """Some word starts with ``prefix`` (at least 3 characters)."""
        if len(prefix) <= 4:
            return prefix in self.prefixes(len(prefix))
        return prefix[:4] in self.prefixes(4) and any(w.startswith(prefix) for w in self.words)

    def long_tokens(self) -> list[tuple[int, int]]:
        """Spans of whitespace-free runs of at least 12 characters that are not plain lower-case
        words: where every token-shaped secret must lie (the shortest, ``ab://u:pwd@h``, has 12)."""
        if self._long is None:
            text = self.text
            spans: list[tuple[int, int]] = []
            pos = 0
            # The length filter first, as one comprehension: most of the ~700 tokens of 4 KB are short.
            for tok in [t for t in text.split() if len(t) >= _LONG]:
                if not (tok.isalpha() and tok.islower()):
                    start = text.find(tok, pos)
                    spans.append((start, start + len(tok)))
                    pos = start + len(tok)
            self._long = spans
        return self._long


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
