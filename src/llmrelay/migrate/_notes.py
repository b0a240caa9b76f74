"""What a translation could not carry over, or carried over only approximately."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Notes:
    # Settings with no llmrelay equivalent: dropped, the user must review them.
    untranslated: list[str] = field(default_factory=list)
    # Settings translated to the closest llmrelay behaviour, which differs in a way worth knowing.
    approximated: list[str] = field(default_factory=list)

    def skip(self, message: str) -> None:
        self.untranslated.append(message)

    def approx(self, message: str) -> None:
        self.approximated.append(message)
