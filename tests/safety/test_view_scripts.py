"""The view's normalised text beyond ASCII (every character that is not a letter or digit a space)
is what the per-character definition gives, for every code point and for mixed texts."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from llmrelay.safety.detectors._view import _SEPARATORS, TextView


def by_definition(low: str) -> str:
    return "".join(c if c.isalnum() else " " for c in low).translate(_SEPARATORS)


def test_every_code_point() -> None:
    every = "".join(map(chr, range(0x80, 0x110000)))  # surrogates included: not letters
    for k in range(0, len(every), 65536):
        part = "é" + every[k : k + 65536]  # beyond ASCII, so the general path
        assert TextView(part).normalised == by_definition(part.lower() if len(part.lower()) == len(part) else part)


def test_every_code_point_in_ascii_prose() -> None:
    """Few characters beyond ASCII (the byte-table path): each code point once, in ASCII context
    holding every ASCII character ("?" too, which the path uses to find the others)."""
    context = "".join(map(chr, range(128)))
    points = [*range(0x80, 0x10000), *range(0x10000, 0x110000, 7)]
    for k in range(0, len(points), 500):
        text = "".join(context[: 20 + k % 7] + chr(c) for c in points[k : k + 500]) + "ab? c"
        low = text.lower() if len(text.lower()) == len(text) else text
        assert TextView(text).normalised == by_definition(low)


@settings(max_examples=300, deadline=None)
@given(st.text(st.one_of(st.sampled_from(list("aZ9_ -.,'\"\t\n\x1c\u00a0\u3000…“”’—ЖжÉ説明😂٣")), st.characters()), max_size=80))
def test_mixed_texts(text: str) -> None:
    view = TextView("é" + text)  # beyond ASCII (an ASCII text takes the byte-table path, tested elsewhere)
    assert view.normalised == by_definition(view.low)
    assert view.words == frozenset(by_definition(view.low).split())
