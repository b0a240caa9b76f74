"""The byte-table translations the detectors use on ASCII text give what ``str.translate`` with
the original tables gives, for every ASCII character."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmrelay.safety.detectors._literals import RunWindows
from llmrelay.safety.detectors._view import _SEPARATORS, _SPACE_SHAPE, ascii_table, translate_ascii
from llmrelay.safety.detectors.toxicity import _SHAPE

ALL_ASCII = "".join(map(chr, range(128)))
TABLES = {"separators": _SEPARATORS, "space_shape": _SPACE_SHAPE, "leet_shape": _SHAPE,
          "runs": str.maketrans({chr(c): "x" if chr(c).isalnum() else " " for c in range(128)})}


@pytest.mark.parametrize("name", sorted(TABLES))
def test_every_ascii_character_translates_alike(name: str) -> None:
    table = TABLES[name]
    assert translate_ascii(ALL_ASCII, ascii_table(table)) == ALL_ASCII.translate(table)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=300))
def test_ascii_texts_translate_alike(text: str) -> None:
    for table in TABLES.values():
        assert translate_ascii(text, ascii_table(table)) == text.translate(table)


def test_run_windows_find_runs_through_the_byte_table() -> None:
    w = RunWindows(frozenset("0123456789abcdef"), 8)
    # Each long-enough run of the alphabet, with one character of look-ahead.
    # (Padded so the runs do not cover most of the text, where one whole pass is returned.)
    assert w.spans("id 0123456789abcdef and 12 deadbeef00 " + "zz " * 30) == [(3, 20), (27, 38)]
