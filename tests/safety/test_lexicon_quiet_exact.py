"""The lexicons' short-text gate is exact since its second stage (``Lexicon._short_quiet``): on a
short ASCII text ``_quiet`` says "quiet" exactly when no signal wakes by the anchor definition, so
it skips the general ``_awake`` for every quiet text and never for one that wakes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.safety.test_lexicon_awake import by_definition
from tests.safety.test_lexicon_gate import FILLER, LEXICONS, _atoms, _short_rows

from llmrelay.safety.detectors._lexicon import Lexicon
from llmrelay.safety.detectors._view import _SHORT, TextView
from llmrelay.safety.detectors.toxicity import clean_view


def _exact(lex: Lexicon, text: str) -> bool:
    view = TextView(text)
    quiet = lex._quiet(view)
    if len(view.low) <= _SHORT and view.low.isascii():
        assert quiet == (by_definition(lex, view) == ()), text
        assert quiet == (lex.awake(TextView(text)) == ()), text
    if quiet:
        assert lex.hits(view, anchored=False) == [], text
    return quiet


def _key_words(lex: Lexicon) -> list[str]:
    """The gate's words and the 4-character starts it holds (tails added): what reaches stage two."""
    starts = {p[:4] for p in lex._gate_pre4 if p[:4].isalpha()}
    return sorted(lex._gate_words - lex._plain) + sorted(p + "x" for p in starts)[:400]


@pytest.mark.parametrize("name", sorted(LEXICONS))
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_quiet_is_exact_on_key_and_anchor_soups(name: str, data: st.DataObject) -> None:
    lex = LEXICONS[name]
    # Key words (pass stage one) mixed with every anchor option (some complete an anchor) and filler.
    pool = _key_words(lex) + _atoms(lex) + FILLER
    parts = data.draw(st.lists(st.sampled_from(pool), max_size=7))
    seps = data.draw(st.lists(st.sampled_from([" ", "", ", ", "-", "'", ": ", "_"]), min_size=len(parts), max_size=len(parts)))
    _exact(lex, "".join(p + s for p, s in zip(parts, seps, strict=True))[:_SHORT])


@pytest.mark.parametrize("name", sorted(LEXICONS))
def test_quiet_is_exact_on_public_rows(name: str) -> None:
    lex = LEXICONS[name]
    texts = _short_rows()
    if not texts:
        pytest.skip("no public safety data")
    outcomes = [_exact(lex, t) for t in texts]
    if name == "toxicity":
        outcomes += [_exact(lex, clean_view(TextView(t.lower())).low) for t in texts]
    # Stage two decides both ways on real prompts: some texts pass stage one and are still quiet.
    second = [lex._short_quiet(TextView(t)) for t in texts if len(t) <= _SHORT and t.isascii() and not _stage_one(lex, t)]
    assert any(outcomes) and not all(outcomes)
    assert any(second) and not all(second)


def _stage_one(lex: Lexicon, text: str) -> bool:
    view = TextView(text)
    return (view.words.isdisjoint(lex._gate_words) and view.prefixes(4).isdisjoint(lex._gate_pre4)
            and (lex._gate_subs is None or lex._gate_subs.search(view.low) is None))


def test_a_key_word_without_the_rest_of_its_anchor_is_quiet() -> None:
    tox = LEXICONS["toxicity"]
    assert not _stage_one(tox, "tell me something about topic number 17 please")
    assert tox._quiet(TextView("Tell me something about topic number 17 please"))
    assert not tox._quiet(TextView("being gay is not about attention"))
    assert tox.awake(TextView("being gay is not about attention")) != ()
