"""Fast paths against their plain definitions: long tokens read off the text's whitespace shape
(ASCII) against ``str.split``; the secret token formats run on the runs of their alphabet
(:class:`RunWindows`) against one pass over the whole text."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmrelay.safety.detectors._literals import RunWindows
from llmrelay.safety.detectors._view import TextView, _long_tokens, _long_tokens_ascii
from llmrelay.safety.detectors.secrets import SecretDetector

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


# Token-format fragments: vendor prefixes, key-shaped runs, separators a run must stop at, and the
# characters right after a token that a closing \b reads (a word character outside the alphabet).
_TOKEN_SOUP = st.lists(st.sampled_from([
    "AKIA", "ASIA", "ghp_", "github_pat_", "sk-", "sk-proj-", "xoxb-", "glpat-", "hf_", "SG.", "eyJ", ".eyJ", "AIza", "://", "u:pw@",
    "0123456789ABCDEF", "abcdef0123456789", "IOSFODNN7EXAMPLE", "T3BlbkFJ", "-us1", "NRAL", "AZDO", "-----", "AAAAA",
    "_", "-", ".", "/", ":", "@", "$", "é", " ", ",", "'", "\"",
]), max_size=30).map("".join)
_DETECTOR = SecretDetector()
_PATTERNS: list[re.Pattern[str]] = [_DETECTOR._joint_all, _DETECTOR._plain_all, *(rx for _, rx in _DETECTOR._in_tokens)]


@pytest.mark.parametrize("text", [
    "AKIAIOSFODNN7EXAMPLE_",  # a closing \b reads the word character after the run
    "x AKIAIOSFODNN7EXAMPLE, key",
    "_AKIAIOSFODNN7EXAMPLE",  # \b before the run reads what precedes it
    "AKIAIOSFODNN7EXAMPL",  # one short of a run that can hold a match
    "hf_" + "a1" * 10 + "/hf_" + "b2" * 10,
    "clé AKIAIOSFODNN7EXAMPLE",  # non-ASCII: the whole text is read
])
def test_run_windows_find_what_the_full_pass_finds(text: str) -> None:
    d = _DETECTOR
    gated = [d._joint.regex_for(text), d._plain.regex_for(text)]
    for rx in [*_PATTERNS, *(g for g in gated if g is not None)]:
        full = [(m.span(), m.lastgroup) for m in rx.finditer(text)]
        assert [(m.span(), m.lastgroup) for m in d._matches(rx, text)] == full, rx.pattern[:60]


@given(_TOKEN_SOUP)
def test_run_windows_find_what_the_full_pass_finds_on_soups(text: str) -> None:
    d = _DETECTOR
    gated = [d._joint.regex_for(text), d._plain.regex_for(text)]  # the alternations the scan runs
    for rx in [*_PATTERNS, *(g for g in gated if g is not None)]:
        assert [(m.span(), m.lastgroup) for m in d._matches(rx, text)] == [(m.span(), m.lastgroup) for m in rx.finditer(text)]


@pytest.mark.parametrize("pattern", [r"a(?=b)\w{3}", r"ab{3}$", r"(?i:ab)c", r"(a)\1b", r"a*", r"[\s\S]{3}"])
def test_run_windows_refuse_what_reads_past_the_match_or_matches_anything(pattern: str) -> None:
    assert RunWindows.of(pattern) is None


def test_run_windows_are_the_long_enough_runs_with_one_character_after() -> None:
    w = RunWindows.of(r"\b[A-Z0-9]{4}\b")
    assert w is not None
    pad = " x ABC" * 5
    assert w.spans("AB12" + pad + " ABCDEF_") == [(0, 5), (35, 42)]
    assert w.spans("ÀBCD") == [(0, 4)]  # non-ASCII: the whole text
    assert w.spans("ABCDEFGH xy") == [(0, 11)]  # runs covering most of the text: one pass
    text = " ".join(["ABCD"] + ["xyz"] * 40) * 8
    assert w.spans(text) == [(0, len(text))]  # too many runs: one pass
    assert RunWindows.of(r"NRAL[0-9A-Z]{16}") is None  # the engine skips to a leading literal itself


@given(st.text(st.sampled_from("ab{}[]-x0 ."), max_size=40), st.text(st.sampled_from("ab{}[]-x0 ."), min_size=1, max_size=4))
def test_substring_tests_with_separators_equal_the_plain_test(text: str, sub: str) -> None:
    view = TextView(text)
    assert view.contains(sub) == (sub in view.low)
    assert view.contains(sub) == (sub in view.low)  # memoised


# Many tokens (more runs than one pass each is worth) around the fragments, so the runs holding
# a pattern's literal are what is read.
_MANY_TOKENS = st.lists(_TOKEN_SOUP, min_size=8, max_size=20).map(" ".join)


@given(_MANY_TOKENS)
def test_runs_holding_a_literal_find_what_the_full_pass_finds(text: str) -> None:
    d = _DETECTOR
    for rx in _PATTERNS:
        assert [(m.span(), m.lastgroup) for m in d._matches(rx, text)] == [(m.span(), m.lastgroup) for m in rx.finditer(text)]


def test_credential_url_reads_only_the_runs_holding_its_literal() -> None:
    rx = next(rx for t, rx in _DETECTOR._in_tokens if t == "CONNECTION_STRING")
    lits = _DETECTOR._token_gates[rx.pattern]
    assert lits == ("://",)
    w = RunWindows.of(rx.pattern)
    assert w is not None
    words = " ".join(f"token{i}-abcdefghijkl" for i in range(10))
    text = f"{words} see postgres://admin:s3cretpw@db.example.com:5432/app and ftp://a:bcd@h, {words} x://"
    spans = w.spans(text, lits)
    assert [text[s:e].rstrip() for s, e in spans] == ["postgres://admin:s3cretpw@db.example.com:5432/app", "ftp://a:bcd@h,"]
    assert all(not text[s:e - 1].count(" ") for s, e in spans)
    found = [m.group("v") for m in _DETECTOR._matches(rx, text)]
    assert found == [m.group("v") for m in rx.finditer(text)] == ["s3cretpw", "bcd"]
