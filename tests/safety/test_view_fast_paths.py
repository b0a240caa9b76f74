"""The shared view's fast paths against their plain definitions: long tokens read off the text's
whitespace shape (ASCII) against ``str.split``."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmrelay.safety.detectors._view import TextView, _long_tokens, _long_tokens_ascii

# Every character str.split treats as whitespace in ASCII, letters of both cases, digits, punctuation.
_ASCII_SOUP = st.text(st.sampled_from("aaaaaaabcdefgZ019_-./:@\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f   "), max_size=120)


@pytest.mark.parametrize("text", [
    "",
    "x" * 12,
    "x" * 11 + " " + "y" * 11,
    "abcdefghijkl AKIAIOSFODNN7EXAMPLE",  # a plain lower-case word is not a token
    "AKIAIOSFODNN7EXAMPLE",  # the whole text
    "lead\x1cAKIAIOSFODNN7EXAMPLE\x1ftail abcdefghijklmnopqrstuvwxyz0",
    "a\tb\nccccccccccccc\rdddddddddddd\x0beeeeeeeeeeeE\x0c",
])
def test_long_tokens_from_the_shape_equal_the_split(text: str) -> None:
    assert _long_tokens_ascii(text) == _long_tokens(text)
    assert TextView(text).long_tokens() == _long_tokens(text)


@given(_ASCII_SOUP)
def test_long_tokens_from_the_shape_equal_the_split_on_soups(text: str) -> None:
    assert _long_tokens_ascii(text) == _long_tokens(text)


def test_long_tokens_of_non_ascii_text_split_on_unicode_whitespace() -> None:
    text = "clé\u2003AKIAIOSFODNN7EXAMPLE\xa0ünïcödé-ünïcödé"
    assert TextView(text).long_tokens() == [(4, 24), (25, 40)]
