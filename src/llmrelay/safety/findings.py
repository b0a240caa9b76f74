"""What a detector reports: a :class:`Finding` (category, where, how sure), and the detector protocol.

A detector is built once (regexes compiled, word lists loaded) and scans many texts:

    >>> class Shout:
    ...     name, category = "shout", "custom"
    ...     def scan(self, text):
    ...         return [Finding("custom", 0, len(text), 1.0, "SHOUT")] if text.isupper() else []
    >>> Shout().scan("HEY")[0].type
    'SHOUT'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol, TypeAlias

Category: TypeAlias = Literal["pii", "secret", "injection", "toxicity", "custom", "moderation"]
Action: TypeAlias = Literal["allow", "flag", "redact", "block"]
Direction: TypeAlias = Literal["input", "output"]

CATEGORIES: tuple[Category, ...] = ("pii", "secret", "injection", "toxicity", "custom", "moderation")
# Stronger actions win when several findings disagree.
ACTION_RANK: dict[str, int] = {"allow": 0, "flag": 1, "redact": 2, "block": 3}


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing found in a text: ``text[start:end]``, with a score in [0, 1]."""

    category: Category
    start: int
    end: int
    score: float
    type: str | None = None
    # The custom rule (or moderation category) that matched, when there is one.
    rule: str | None = None

    def shifted(self, offset: int) -> Finding:
        return Finding(self.category, self.start + offset, self.end + offset, self.score, self.type, self.rule)

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "category": self.category, "start": self.start, "end": self.end, "score": round(self.score, 3),
        }
        if self.type:
            out["type"] = self.type
        if self.rule:
            out["rule"] = self.rule
        return out


class Detector(Protocol):
    """Finds one family of problems in a text. ``scan`` must be pure and thread-safe."""

    name: str
    category: Category

    def scan(self, text: str) -> list[Finding]: ...


def strongest(actions: list[str]) -> Action:
    best: Action = "allow"
    for a in actions:
        if ACTION_RANK[a] > ACTION_RANK[best]:
            best = a  # type: ignore[assignment]
    return best
