"""The lexicons' short-text gate (``Lexicon._quiet``): when it says no signal can wake, none does by
the anchor definition, and the full patterns (every signal over the whole text) match nothing."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.conftest import SAFETY_DATA
from tests.safety.test_lexicon_awake import by_definition

from llmrelay.safety.detectors._lexicon import Lexicon
from llmrelay.safety.detectors._view import _SHORT, TextView
from llmrelay.safety.detectors.directives import _SIGNALS as _DIRECTIVES
from llmrelay.safety.detectors.injection import _OVERRIDE
from llmrelay.safety.detectors.toxicity import _SIGNALS, clean_view

LEXICONS = {"injection": Lexicon(_OVERRIDE), "toxicity": Lexicon(_SIGNALS), "directive": Lexicon([s[:3] for s in _DIRECTIVES])}


def _atoms(lex: Lexicon) -> list[str]:
    """Every option of every anchor, prefixes with and without a tail: the strings a gate must see."""
    out = set(lex._plain)
    for anchors in lex._complex:
        for anchor in anchors:
            for group, subs in anchor:
                out.update(s for s in subs if not s.startswith("\0"))  # not the regex gates
                for kind, v in group:
                    out.update((v, v + "s", v + "ing") if kind == "pre" else (v,))
    return sorted(out)


def _check(lex: Lexicon, text: str) -> bool:
    view = TextView(text)
    quiet = lex._quiet(view)
    if quiet:
        assert by_definition(lex, view) == (), text
        assert lex.hits(view, anchored=False) == [], text
    return quiet


FILLER = ["the", "of", "with", "you", "please", "write", "a", "short", "story", "about", "cats", "12", "ok"]


@pytest.mark.parametrize("name", sorted(LEXICONS))
@settings(max_examples=250, deadline=None)
@given(data=st.data())
def test_a_quiet_text_wakes_nothing_on_anchor_soups(name: str, data: st.DataObject) -> None:
    lex = LEXICONS[name]
    parts = data.draw(st.lists(st.sampled_from(_atoms(lex) + FILLER), max_size=8))
    seps = data.draw(st.lists(st.sampled_from([" ", "", ", ", "-", "'", ": "]), min_size=len(parts), max_size=len(parts)))
    text = "".join(p + s for p, s in zip(parts, seps, strict=True))[:_SHORT]
    _check(lex, text)


def _short_rows() -> list[str]:
    out: list[str] = []
    for name in ("jailbreak", "toxic", "benign"):
        path = SAFETY_DATA / f"{name}.jsonl"
        if path.exists():
            with path.open(encoding="utf-8") as f:  # not splitlines(): rows hold U+2028
                rows = [json.loads(line) for line in f if line.strip()]
            # Every row's first 256 characters (cut at a space): short texts of every kind.
            out += [str(r["text"])[:_SHORT].rsplit(" ", 1)[0] for r in rows[:600]]
    return out


@pytest.mark.parametrize("name", sorted(LEXICONS))
def test_a_quiet_text_wakes_nothing_on_public_rows(name: str) -> None:
    lex = LEXICONS[name]
    texts = _short_rows()
    if not texts:
        pytest.skip("no public safety data")
    quiet = sum(_check(lex, t.lower()) for t in texts)
    if name == "toxicity":
        quiet += sum(_check(lex, clean_view(TextView(t.lower())).low) for t in texts)
    # Both outcomes occur: the gate is tried, and it does let texts through to the patterns.
    assert 0 < quiet < len(texts) * (2 if name == "toxicity" else 1)


def test_the_gate_applies_to_short_ascii_text_only() -> None:
    lex = LEXICONS["toxicity"]
    assert lex._quiet(TextView("say hello to bench client number 123."))
    assert not lex._quiet(TextView("say hello " * 40))  # longer than _SHORT: the general path
    assert not lex._quiet(TextView("say hello, café"))  # not ASCII
    assert not lex._quiet(TextView("you are so stupid"))
