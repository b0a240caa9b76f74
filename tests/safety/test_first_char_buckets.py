"""The lexicons' alternations grouped by first character (:func:`first_char_buckets`) against the
patterns as written: the same matches (span and signal) everywhere, and no rewrite of what does
not have the shape."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmrelay.safety.detectors import default_detectors
from llmrelay.safety.detectors._lexicon import Lexicon, first_char_buckets

SAFETY_DATA = Path(os.environ.get("LLMRELAY_SHARED", Path(__file__).resolve().parents[3] / "shared")) / "data" / "safety"
_LEXICONS = [lex for d in default_detectors() for lex in vars(d).values() if isinstance(lex, Lexicon)]


def _matches(rx: re.Pattern[str], text: str) -> list[tuple[tuple[int, int], str | None]]:
    return [(m.span(), m.lastgroup) for m in rx.finditer(text)]


def _rows() -> list[str]:
    if not SAFETY_DATA.is_dir():
        pytest.skip(f"no safety data at {SAFETY_DATA}")
    out: list[str] = []
    for name in ("jailbreak", "toxic", "benign"):
        path = SAFETY_DATA / f"{name}.jsonl"
        out += [str(json.loads(line)["text"]).lower() for line in path.read_text(encoding="utf-8").splitlines()[::3] if line.strip()]
    return out


def test_the_lexicons_have_bucketed_signals() -> None:
    assert any(a != b for lex in _LEXICONS for a, b in zip(lex._patterns, lex._fast, strict=True))


def test_every_lexicon_finds_with_buckets_what_it_finds_as_written_on_public_rows() -> None:
    rows = _rows()
    assert len(rows) > 500
    for lex in _LEXICONS:
        for text in rows:
            assert _matches(lex._all_fast, text) == _matches(lex._all, text)


# Words of the signals (their first words above all) glued by spaces, apostrophes and punctuation.
_WORDS = sorted({w for lex in _LEXICONS for p in lex._patterns for w in re.findall(r"[a-z]{2,}", p)})
_SOUP = st.lists(st.one_of(st.sampled_from(_WORDS), st.sampled_from([" ", "  ", "'", "-", ".", "\n", "s", "n't"])), max_size=40).map(
    lambda parts: " ".join(parts))


@given(_SOUP)
def test_every_lexicon_finds_with_buckets_what_it_finds_as_written_on_soups(text: str) -> None:
    for lex in _LEXICONS:
        assert _matches(lex._all_fast, text) == _matches(lex._all, text)


@pytest.mark.parametrize(("pattern", "texts"), [
    (r"\b(?:a|ab|b)", ["ab", "b a", "abab"]),  # order within a first character decides the match
    (r"\b(?:ab|a)c?", ["abc", "ac", "a"]),
    (r"\b(?:(?:these|those|th)\s+people|the)\b", ["these people", "the people", "th people", "the"]),
    (r"\b(?:x(?:y|z)?|xy)w", ["xyw", "xw", "xzw"]),
    (r"\b(?:\bfoo|bar|\bfo)o?x", ["foox", "fox", "barx", "afoox"]),  # a \b where one already holds
])
def test_bucketed_patterns_match_as_written(pattern: str, texts: list[str]) -> None:
    fast = first_char_buckets(pattern)
    assert fast != pattern
    for text in texts:
        assert _matches(re.compile(fast), text) == _matches(re.compile(pattern), text)


@pytest.mark.parametrize("pattern", [
    r"foo|bar",  # no leading \b(?:...)
    r"\b(?:\.foo|bar)x",  # an alternative starting with an escape
    r"\b(?:[ab]c|d)",  # ... a class
    r"\b(?:a?b|c)",  # ... a quantified character
    r"\b(?:(?i:a)|b)",  # ... a group with flags
    r"\b(?:a|b)?c",  # the alternation itself is optional
    r"\b(?:(a)|b)\1",  # back-references
    r"\b(?:(?:a|b)+c|d)",  # a repeated group
])
def test_other_shapes_are_left_as_written(pattern: str) -> None:
    assert first_char_buckets(pattern) == pattern


def test_top_level_alternations_are_grouped_under_the_lexicons_boundary() -> None:
    lex = Lexicon([(0.5, r"\bdo\s+anything|dan\s+mode|\bdanger\b", ("anything", "mode", "danger"))])
    assert lex._fast[0] != lex._patterns[0]
    for text in ("do anything", "dan mode", "danger", "adan mode", "xdo anything", "dan danger"):
        assert _matches(lex._all_fast, text) == _matches(lex._all, text)
