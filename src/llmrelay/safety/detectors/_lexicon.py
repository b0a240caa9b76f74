"""Weighted phrase lexicons shared by the score-based detectors (injection, toxicity).

A :class:`Lexicon` compiles ``(weight, pattern)`` signals into one alternation with a named group
per signal, so a text is scanned once; the score is ``1 - prod(1 - w)`` over distinct signals,
i.e. independent pieces of evidence add up but never pass 1.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Hit:
    signal: int
    start: int
    end: int
    weight: float


class Lexicon:
    def __init__(self, signals: Sequence[tuple[float, str]], flags: int = re.IGNORECASE) -> None:
        self.weights = tuple(w for w, _ in signals)
        self._rx = re.compile("|".join(f"(?P<s{i}>{p})" for i, (_, p) in enumerate(signals)), flags)

    def hits(self, text: str) -> list[Hit]:
        out: list[Hit] = []
        for m in self._rx.finditer(text):
            name = m.lastgroup or "s0"
            i = int(name[1:])
            out.append(Hit(i, m.start(), m.end(), self.weights[i]))
        return out


def combine(weights: Sequence[float]) -> float:
    p = 1.0
    for w in weights:
        p *= 1.0 - w
    return 1.0 - p
