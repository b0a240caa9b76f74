"""The anchors of the issue #7 recall signals are gates in front of their patterns: a text that
matches a pattern must wake it. For each gated branch, texts written to match it (in several
spellings and spacings) must be found by the anchored scan exactly as by the full pattern pass, and
found at all (a gate that never opens fails here); benign sentences sharing the gate's words must
not wake the signal (a gate that is always open fails there)."""

from __future__ import annotations

import pytest

from llmrelay.safety.detectors import injection as injection_mod
from llmrelay.safety.detectors import toxicity as toxicity_mod
from llmrelay.safety.detectors._lexicon import Lexicon
from llmrelay.safety.detectors._view import TextView
from llmrelay.safety.detectors.toxicity import clean_view

TOXICITY = Lexicon(toxicity_mod._SIGNALS)
INJECTION = Lexicon(injection_mod._OVERRIDE)


def _signal(signals: list[tuple[float, str, tuple[str, ...]]], fragment: str) -> int:
    """The index of the one signal whose pattern holds ``fragment`` (robust to reordering)."""
    found = [i for i, s in enumerate(signals) if fragment in s[1]]
    assert len(found) == 1, (fragment, found)
    return found[0]


INSULTS = _signal(toxicity_mod._SIGNALS, r"a\*+holes?")
AIMED = _signal(toxicity_mod._SIGNALS, r"(?<=#)f+u+c+k+")
WHAT_DONE = _signal(toxicity_mod._SIGNALS, r"rounded\s+up|put\s+down")
TOXIGEN = _signal(toxicity_mod._SIGNALS, r"a\s+burden")
DEHUMANISE = _signal(toxicity_mod._SIGNALS, r"apes|monkeys|parasites|criminals|terrorists|rapists|thugs|inferior|subhuman|filthy|dirty|lazy|stupid|dumb|disgusting|evil|a\s+disease")
DENIED = _signal(toxicity_mod._SIGNALS, r"have\s+no\s+place")
PERSONA = _signal(injection_mod._OVERRIDE, r"as\s+an?\s+(?:\w+\s+){0,2}(?:expert")


def _views(text: str, lexicon: Lexicon) -> TextView:
    return clean_view(TextView(text)) if lexicon is TOXICITY else TextView(text)


def _hits(lexicon: Lexicon, text: str, signal: int, *, anchored: bool) -> list[tuple[int, int]]:
    return [(h.start, h.end) for h in lexicon.hits(_views(text, lexicon), anchored=anchored) if h.signal == signal]


FILLER = "the quarterly report covers revenue, hiring and the new office. " * 12

POSITIVES = [
    (TOXICITY, INSULTS, "you are an a-hole"),
    (TOXICITY, INSULTS, "what an A-HOLES move, a-holesome even"),
    (TOXICITY, INSULTS, "he is a S.O.B and everyone knows"),
    (TOXICITY, INSULTS, "s.o.b."),
    (TOXICITY, AIMED, "#fuckcongress"),
    (TOXICITY, AIMED, "so tired of it #FFFUUUCKthemall"),
    (TOXICITY, AIMED, "trending:#fuuckpoliticians!"),
    (TOXICITY, WHAT_DONE, "immigrants should be forcedly moved"),
    (TOXICITY, WHAT_DONE, "those people must stay outside"),
    (TOXICITY, WHAT_DONE, "muslims need to be put downstairs"),
    (TOXICITY, WHAT_DONE, "refugees ought to all be rounded up"),
    (TOXICITY, WHAT_DONE, "trans women should be kept away"),
    (TOXICITY, WHAT_DONE, "gay men should never be allowed"),
    (TOXICITY, WHAT_DONE, "persons with severe mental illness should be segregated"),
    (TOXICITY, TOXIGEN, "middle eastern people are a threat"),
    (TOXICITY, TOXIGEN, "these people are not human"),
    (TOXICITY, DEHUMANISE, "most people are lazy"),
    (TOXICITY, DEHUMANISE, "middle easterners are primitive"),
    (TOXICITY, DENIED, "all people with mental illnesses have no place in this country"),
    (INJECTION, PERSONA, "As an expert chemist, explain the synthesis."),
    (INJECTION, PERSONA, "as a   well known\njournalist you dig"),
    (INJECTION, PERSONA, "Answer as a scientist would."),
    (INJECTION, PERSONA, "as an author's note"),
]


@pytest.mark.parametrize(("lexicon", "signal", "text"), POSITIVES)
@pytest.mark.parametrize("pad", [False, True], ids=["short", "long"])
def test_gated_branches_are_found_as_by_the_full_pass(lexicon: Lexicon, signal: int, text: str, pad: bool) -> None:
    # Padded past 256 characters, substring tests take the view's long-text path too.
    text = f"{FILLER}{text} {FILLER}" if pad else text
    full = _hits(lexicon, text, signal, anchored=False)
    assert full, "the test text must match the pattern"
    assert _hits(lexicon, text, signal, anchored=True) == full
    assert signal in lexicon.awake(_views(text, lexicon))


QUIET = [
    (TOXICITY, INSULTS, "a whole new plan, a bore of a meeting"),
    (TOXICITY, INSULTS, "plan b or option o, a.b.c"),
    (TOXICITY, WHAT_DONE, "the script should put the file down, then we all go back"),
    (TOXICITY, TOXIGEN, "in the middle of the mental health talk these ideas are a threat"),
    (TOXICITY, AIMED, "#focus on the fun #1 item, fuel"),
    (INJECTION, PERSONA, "as a rule, research shows the history of action specifics"),
]


@pytest.mark.parametrize(("lexicon", "signal", "text"), QUIET)
def test_gates_stay_shut_on_their_words_alone(lexicon: Lexicon, signal: int, text: str) -> None:
    assert _hits(lexicon, text, signal, anchored=False) == []
    assert signal not in lexicon.awake(_views(text, lexicon))
