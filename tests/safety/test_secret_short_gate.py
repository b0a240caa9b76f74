"""The secrets detector's combined gate for short texts (``SecretDetector._all_words/_all_subs``):
a short text holding none of them skips every word- or substring-gated scan, so each gate those
scans test must imply one of them; and on short texts made of the gates' own strings the gated
scan finds what the full scan finds."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from llmrelay.safety.detectors._view import _SHORT, TextView
from llmrelay.safety.detectors.secrets import (
    _ASSIGNMENT_GATES,
    _AUTH_GATES,
    _CONTEXT,
    _NET_GATES,
    SecretDetector,
    _Gates,
)

DET = SecretDetector()
SUB_GATES = [g for _, gates, _ in _CONTEXT for g in gates if not g.startswith("w:")] + [*_ASSIGNMENT_GATES, *_NET_GATES, *_AUTH_GATES, "passw"]
WORD_GATES = [g[2:] for _, gates, _ in _CONTEXT for g in gates if g.startswith("w:")] + ["password", "pwd"]


def test_every_gate_implies_the_combined_gate() -> None:
    for g in SUB_GATES:
        assert any(s in g for s in DET._all_subs), g  # g present => that shorter string present
    assert set(WORD_GATES) <= DET._all_words


def test_a_clean_short_prompt_is_quiet_and_a_gate_word_is_not() -> None:
    quiet = _Gates(TextView("Say hello to bench client number 123.")).none_of(DET._all_words, DET._all_subs)
    assert quiet and _Gates(TextView("Say hello to bench client number 123.")).none_in_short(DET._all_words, DET._all_subs_rx)
    assert not _Gates(TextView("Say hello to the user.")).none_of(DET._all_words, DET._all_subs)
    assert not _Gates(TextView("my Token is here")).none_of(DET._all_words, DET._all_subs)


# Values a gated scan would find next to its gate word, so the soups do hold secrets.
VALUES = ["'Xk9#mPq2vL'", "=Zq8xLm2p;", ": s3cretPassw0rd", "admin:Sup3rS3cret", "{0x1f, 0x2e, 0x3d, 0x4c, 0x5b, 0x6a, 0x79, 0x88}",
          "\"GawgguFyGrWKav7AX4VKUg\"", "os.getenv('K', 'fallbackSecret99')", "AKIAIOSFODNN7EXAMPLE"]
PIECES = sorted({*SUB_GATES, *WORD_GATES, *(w.upper() for w in WORD_GATES), *VALUES, "with", "is", "the", "for", "by", "-u", "=", ":"})


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=10), st.sampled_from([" ", "", "\n", "_", " = "]))
def test_gated_scan_equals_full_scan_on_short_gate_soups(parts: list[str], sep: str) -> None:
    text = sep.join(parts)[:_SHORT]
    assert DET.scan_view(TextView(text)) == DET.scan_view(TextView(text), anchored=False)
    # The one-search form of the combined gate answers as the per-substring one.
    assert _Gates(TextView(text)).none_in_short(DET._all_words, DET._all_subs_rx) == _Gates(TextView(text)).none_of(DET._all_words, DET._all_subs)
