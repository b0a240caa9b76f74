"""What the Anthropic adapter needs to know about each Claude model family.

Model ids are parsed, not listed one by one, so a new dated snapshot (``claude-sonnet-4-5-20250929``)
or a new version gets the right behaviour without an edit here:

    >>> traits("claude-opus-4-7").adaptive_thinking, traits("claude-3-5-haiku-latest").max_output
    (True, 8192)

A table row is a (family, version) floor: the newest row whose version the model reaches wins.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True, slots=True)
class ModelTraits:
    # The most output tokens the model may be asked for (the API rejects more).
    max_output: int = 64000
    # ``thinking: {type: adaptive}`` with ``output_config.effort`` (Claude 4.6 and later).
    adaptive_thinking: bool = False
    # Thinking text is omitted unless ``display: summarized`` is asked for (Claude 4.7 and later).
    summarized_display: bool = False
    # ``output_config.format`` constrains the answer to a JSON schema (Claude 4.5 and later, Opus 4.1).
    native_json_schema: bool = False


_DEFAULT = ModelTraits(max_output=64000, adaptive_thinking=True, summarized_display=True, native_json_schema=True)

# (family, (major, minor)) -> traits of that version and later ones of the same family.
_TABLE: tuple[tuple[str, tuple[int, int], ModelTraits], ...] = (
    ("haiku", (3, 0), ModelTraits(max_output=4096)),
    ("haiku", (3, 5), ModelTraits(max_output=8192)),
    ("haiku", (4, 5), ModelTraits(max_output=64000, native_json_schema=True)),
    ("sonnet", (3, 0), ModelTraits(max_output=8192)),
    ("sonnet", (3, 7), ModelTraits(max_output=64000)),
    ("sonnet", (4, 5), ModelTraits(max_output=64000, native_json_schema=True)),
    ("sonnet", (4, 6), ModelTraits(max_output=64000, adaptive_thinking=True, native_json_schema=True)),
    ("opus", (3, 0), ModelTraits(max_output=4096)),
    ("opus", (4, 0), ModelTraits(max_output=32000)),
    ("opus", (4, 1), ModelTraits(max_output=32000, native_json_schema=True)),
    ("opus", (4, 5), ModelTraits(max_output=64000, native_json_schema=True)),
    ("opus", (4, 6), ModelTraits(max_output=128000, adaptive_thinking=True, native_json_schema=True)),
    ("opus", (4, 7), ModelTraits(128000, adaptive_thinking=True, summarized_display=True, native_json_schema=True)),
)

# claude-3-5-sonnet-..., claude-sonnet-4-5-..., claude-opus-4-20250514, claude-fable-5
_NEW_STYLE = re.compile(r"claude-([a-z]+)-(\d+)(?:-(\d))?(?:\D|$)")
_OLD_STYLE = re.compile(r"claude-(\d+)(?:[-.](\d))?-([a-z]+)")


def _parse(model: str) -> tuple[str, tuple[int, int]] | None:
    name = model.lower().rsplit("/", 1)[-1]
    old = _OLD_STYLE.search(name)
    if old:
        return old.group(3), (int(old.group(1)), int(old.group(2) or 0))
    new = _NEW_STYLE.search(name)
    if new:
        return new.group(1), (int(new.group(2)), int(new.group(3) or 0))
    return None


@lru_cache(maxsize=256)
def traits(model: str) -> ModelTraits:
    """The traits of ``model``; an unknown name is assumed to be a recent model."""
    parsed = _parse(model)
    if parsed is None:
        return _DEFAULT
    family, version = parsed
    best: ModelTraits | None = None
    for fam, floor, row in _TABLE:
        if fam == family and version >= floor:
            best = row
    if best is None:
        # A family we have no row for (a new name): recent models behave like the newest rows.
        return _DEFAULT if version >= (4, 6) else ModelTraits()
    if version >= (4, 7) and not best.summarized_display:
        best = ModelTraits(best.max_output, True, True, True)
    return best
