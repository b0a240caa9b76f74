"""The toxicity detector's de-obfuscated view is patched from the shared view (words re-read only
around the changes, look-alike runs found through the text's shape): it must equal the view built
from scratch, at the edges where a patch could go wrong: a changed word at the start or end of the
text, a word that also occurs unchanged elsewhere (it must stay), one that occurs only where it
changed (it must go, with its prefixes), several changes in one word, separators that are not a
plain space, non-ASCII text."""

from __future__ import annotations

from math import fsum

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmrelay.safety.detectors._view import TextView
from llmrelay.safety.detectors.toxicity import _full_clean_view, _leet_spans_slow, clean_view, leet_spans


def _same(text: str) -> TextView:
    fast, full = clean_view(TextView(text)), _full_clean_view(TextView(text))
    assert fast.low == full.low
    assert fast.normalised == full.normalised
    assert fast.words == full.words
    assert fast.prefixes(3) == full.prefixes(3)
    assert fast.prefixes(4) == full.prefixes(4)
    # Substrings are answered from the base view's memo and the changed words: each substring of
    # every word of either view, and a few that span words or occur nowhere.
    subs = {w[i:j] for w in fast.words | full.words | TextView(text).words for i in range(len(w)) for j in range(i + 1, len(w) + 1)}
    for sub in sorted(subs | {"tch", "bitch", "ab", "zz", "sh", "1"}):
        fresh = clean_view(TextView(text))
        assert fresh.contains(sub) == (sub in full.vocabulary), sub
    _same_answers(text, full, subs)
    return fast


def _same_answers(text: str, full: TextView, probes: set[str]) -> None:
    """The word-set questions a patched view answers from its base and its changes (without sets
    of its own) agree with the sets of the view built from scratch; the sum is bit-identical."""
    view = clean_view(TextView(text))
    for group in (frozenset(probes), frozenset(full.words), frozenset(TextView(text).words), frozenset({"tch", "zz"}), frozenset()):
        assert view.common_words(group) == group & full.words
        assert view.has_word_in(group) == (not group.isdisjoint(full.words))
        for n in (3, 4):
            cut = frozenset(w[:n] for w in group)
            assert view.common_prefixes(cut, n) == cut & full.prefixes(n)
    for p in sorted({w[:k] for w in probes for k in (3, 4, 5, 7) if len(w) >= k})[:300]:
        assert clean_view(TextView(text)).has_prefix(p) == full.has_prefix(p), p
    # Weights whose sum depends on the order of addition (a large one cancels), over every probe.
    weights = {w: (1e16 if i % 3 == 0 else 0.1 * (i + 1)) * (-1) ** i for i, w in enumerate(sorted(probes))}
    assert clean_view(TextView(text)).word_sum(weights) == fsum(weights.get(w, 0.0) for w in full.words)


@pytest.mark.parametrize("text", [
    "sh1t at the start",
    "at the end: b*tch",
    "b*tch and a lone b and tch",  # "b" and "tch" stay: they occur unchanged elsewhere
    "you b*tch",  # "tch" goes, and so do its prefixes
    "B1TCH3S and b!tch and @sshole and $hit, l00ser",
    "sh!t\x1cb1tch\x1fd0g",  # separators split() reads as whitespace
    "clé « b*tch » ünïcödé — f@ggot",
    "ops@example.com AKIAIOSFODNN7EXAMPLE 1st 2nd 10th 5pm",
    "@@@ !!! 1234 a1 1a",
])
def test_patched_view_equals_the_view_built_from_scratch(text: str) -> None:
    _same(text)


def test_removed_words_lose_their_prefixes_and_kept_ones_keep_them() -> None:
    v = _same("you b*tch")
    assert "tch" not in v.words and "tch" not in v.prefixes(3) and "bitch" in v.words and "bit" in v.prefixes(3)
    v = _same("b*tch then tchotchke")
    assert "tch" not in v.words and "tch" in v.prefixes(3) and "tcho" in v.prefixes(4)


def test_text_without_obfuscation_keeps_the_shared_view() -> None:
    view = TextView("plain words, 2019 and 10 items!")
    assert clean_view(view) is view


_ALPHABET = "abst ehx@4310!$5*7.,'-_\n\x1cé"


@given(st.text(alphabet=_ALPHABET, max_size=60))
def test_patched_view_equals_the_full_one_on_any_text(text: str) -> None:
    _same(text)


@given(st.text(alphabet=_ALPHABET.replace("é", ""), max_size=60))
def test_shape_walk_finds_the_runs_the_charset_regex_finds(text: str) -> None:
    assert leet_spans(text.lower()) == _leet_spans_slow(text.lower())
