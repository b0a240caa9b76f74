"""The lexicon's awake signals, found from an index of the text's anchor atoms, equal the anchor
definition evaluated signal by signal (a word anchor, or every group of some anchor held)."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.conftest import SAFETY_DATA

from llmrelay.safety.detectors._lexicon import Lexicon
from llmrelay.safety.detectors._view import TextView
from llmrelay.safety.detectors.injection import _OVERRIDE
from llmrelay.safety.detectors.toxicity import _SIGNALS, clean_view

LEXICONS = {"injection": Lexicon(_OVERRIDE), "toxicity": Lexicon(_SIGNALS)}


def by_definition(lex: Lexicon, view: TextView) -> tuple[int, ...]:
    """Each signal in turn: one of its plain words is a word of the text, or some anchor has
    every group held by a word, a prefix or a substring the text has."""
    words = view.words
    out = []
    for i, ws in enumerate(lex._words):
        if not ws.isdisjoint(words):
            out.append(i)
            continue
        for anchor in lex._complex[i]:
            if all(any(_has(view, kind, v) for kind, v in group) or any(_sub(view, s) for s in subs) for group, subs in anchor):
                out.append(i)
                break
    return tuple(out)


def _sub(view: TextView, s: str) -> bool:
    """A substring of the text, or (after a NUL and "l" or "n") a regex gate that matches in the
    lower-cased or the normalised text."""
    if s.startswith("\0"):
        return re.search(s[2:], view.normalised if s[1] == "n" else view.low) is not None
    return s in view.low


def _has(view: TextView, kind: str, value: str) -> bool:
    return value in view.words if kind == "w" else any(w.startswith(value) for w in view.words)


def _texts() -> list[str]:
    out: list[str] = []
    for name in ("jailbreak", "toxic", "benign"):
        path = SAFETY_DATA / f"{name}.jsonl"
        if path.exists():
            with path.open(encoding="utf-8") as f:  # not splitlines(): rows hold U+2028
                rows = [json.loads(line) for line in f if line.strip()]
            out += [str(r["text"]) for r in rows[:400]]
    return out


@pytest.mark.parametrize("name", sorted(LEXICONS))
def test_awake_equals_the_definition_on_public_rows(name: str) -> None:
    lex = LEXICONS[name]
    texts = _texts()
    if not texts:
        pytest.skip("no public safety data")
    woke = 0
    for text in texts:
        view = TextView(text.lower())
        view = clean_view(view) if name == "toxicity" else view
        got = lex.awake(view)
        assert got == by_definition(lex, view), text[:200]
        woke += bool(got)
    assert woke > len(texts) // 10  # the rows do wake signals: the comparison is not all-empty


ATOMS = ["ignore", "previous", "instructions", "you", "now", "system", "mode", ">", "]", "no", "restrictions",
         "without", "does", "have", "ethics", "sure", "here", "act", "ai", "classic", "dan", "kill", "idiot", "shut", "up",
         # the regex gates' words: adjacent or apart, the index and the definition must agree
         "prompt", "what", "show", "bound", "by", "not", "doesn't", "follow", "end", "of", "new", "instruction", "text", "above"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(ATOMS), max_size=12), st.sampled_from([" ", "", "  "]))
def test_awake_equals_the_definition_on_atom_soups(parts: list[str], sep: str) -> None:
    text = sep.join(parts)
    for lex in LEXICONS.values():
        view = TextView(text)
        assert lex.awake(view) == by_definition(lex, view)
