"""A learned lexicon: a linear model over the words of a text, scored with set and dict look-ups.

The hand-written lexicons catch what can be written down; a learned lexicon adds the words that
are evidence only in aggregate ("persona", "unfiltered", "whatsoever" in one prompt). Each model is
a logistic regression over word presence, trained offline by ``scripts/train_safety_lexicon.py`` on
the public labelled data and shipped as ``safety/data/lexicon.json.gz``. Scoring a text is one
C-speed intersection of its word set (``TextView.words``, already computed for the regex anchors)
with the vocabulary, then a sum over the few words that matched: a few microseconds on 4 KB.

Bigrams were measured and left out: they add ~1 point of cross-validated recall at 0.15 ms per
detector on a 4 KB prompt (a token sequence has to be built), against a whole-scan budget of 1 ms.

The raw margin is mapped onto the policy's score scale through knots chosen on out-of-fold benign
scores (false-positive budgets), so ``flag_at``/``threshold`` mean the same as for the regexes:

    >>> m = LinearLexicon("injection", bias=-2.0, weights={"unfiltered": 1.5, "persona": 1.0},
    ...                   knots=(0.0, 0.4, 1.0), scores=(0.4, 0.5, 0.8))
    >>> hit = m.score(TextView("An unfiltered persona"))
    >>> round(hit.score, 2), hit.word
    (0.55, 'unfiltered')
    >>> m.score(TextView("a recipe for soup")) is None
    True
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Mapping, Set
from dataclasses import dataclass, field
from itertools import repeat
from math import fsum
from pathlib import Path
from typing import Any

from ._view import TextView

DATA = Path(__file__).resolve().parents[1] / "data" / "lexicon.json.gz"
FORMAT = 1
# Scores below this are not evidence: no level acts or flags under 0.4.
REPORT_AT = 0.4


@dataclass(frozen=True, slots=True)
class LinearHit:
    score: float  # on the policy scale
    margin: float  # the raw logit
    word: str  # the matched word with the largest positive weight ("" if none)


@dataclass(frozen=True, slots=True)
class LinearLexicon:
    """One category's model: ``bias + sum(weights[w] for w in words)``, calibrated by ``knots``
    (increasing margins) onto ``scores`` (the policy scores they map to)."""

    category: str
    bias: float
    weights: Mapping[str, float]
    knots: tuple[float, ...]
    scores: tuple[float, ...]
    _vocab: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.knots) != len(self.scores) or list(self.knots) != sorted(self.knots):
            raise ValueError("knots must increase and pair up with scores")
        object.__setattr__(self, "_vocab", frozenset(self.weights))

    def margin(self, words: frozenset[str]) -> float:
        """The logit for a word set: one C-speed intersection, then a sum over the matches. The sum
        is ``fsum`` (exact, then rounded once) so that it does not depend on the set's iteration
        order, which varies with how the set was built and with the process's string hashing.
        A prompt has fewer words than the vocabulary: then each word is looked up once, absent
        ones weighing 0.0 (exact in ``fsum``), which skips building the intersection (27 -> 13 µs
        on the benchmark's 313 words)."""
        if len(words) <= len(self._vocab):
            return self.bias + fsum(map(self.weights.get, words, repeat(0.0)))
        return self.bias + fsum(map(self.weights.__getitem__, self._vocab.intersection(words)))

    def strongest(self, words: frozenset[str]) -> str:
        """The present word with the largest positive weight ("" if none): the finding's span.
        Looked for only once a text is reported, so a clean prompt never pays for it."""
        return self._top(self._vocab.intersection(words))

    def _top(self, present: Set[str]) -> str:
        top = max(present, key=lambda w: (self.weights[w], w), default="")  # ties: by word, not set order
        return top if top and self.weights[top] > 0 else ""

    def calibrate(self, margin: float) -> float:
        """Margin -> policy score: piecewise linear through the knots; below the first knot the
        score falls off (halving per unit of margin), above the last it approaches 1."""
        xs, ys = self.knots, self.scores
        if margin <= xs[0]:
            return ys[0] * 0.5 ** (xs[0] - margin)
        for i in range(1, len(xs)):
            if margin <= xs[i]:
                t = (margin - xs[i - 1]) / (xs[i] - xs[i - 1]) if xs[i] > xs[i - 1] else 1.0
                return ys[i - 1] + t * (ys[i] - ys[i - 1])
        return 1.0 - (1.0 - ys[-1]) * 0.5 ** (margin - xs[-1])

    def score(self, view: TextView) -> LinearHit | None:
        """The evidence in a text, or None when it scores under :data:`REPORT_AT`. A patched view
        (toxicity's de-obfuscated one) is summed from its base's words and its changes
        (:meth:`TextView.word_sum`, exact like :meth:`margin`), without a word set of its own."""
        m = self.bias + view.word_sum(self.weights) if view.is_patched else self.margin(view.words)
        if m <= self.knots[0] and self.scores[0] < REPORT_AT:
            return None  # below the first knot calibrate() gives at most scores[0] (most prompts)
        s = self.calibrate(m)
        if s < REPORT_AT:
            return None
        return LinearHit(s, m, self._top(view.common_words(self._vocab)))

    def to_dict(self) -> dict[str, object]:
        return {"bias": self.bias, "weights": dict(self.weights), "knots": list(self.knots), "scores": list(self.scores)}


def span_of(view: TextView, word: str) -> tuple[int, int]:
    """Where ``word`` first occurs as a whole word (the whole text when it cannot be placed)."""
    if word:
        m = re.search(r"(?<![^\W_])" + re.escape(word) + r"(?![^\W_])", view.low)
        if m is not None:
            return m.start(), m.end()
    return 0, len(view.text)


def load(path: Path = DATA) -> dict[str, LinearLexicon]:
    """The shipped models by category (``{}`` when the file is absent: the regexes still work)."""
    try:
        raw = json.loads(gzip.decompress(path.read_bytes()))
    except FileNotFoundError:
        return {}
    if raw.get("format") != FORMAT:
        raise ValueError(f"{path}: lexicon format {raw.get('format')!r}, expected {FORMAT}; retrain it")
    return {cat: from_dict(cat, m) for cat, m in raw["models"].items()}


def from_dict(category: str, m: Mapping[str, Any]) -> LinearLexicon:
    return LinearLexicon(
        category, float(m["bias"]), {str(k): float(v) for k, v in m["weights"].items()},
        tuple(float(k) for k in m["knots"]), tuple(float(s) for s in m["scores"]),
    )
