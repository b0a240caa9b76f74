"""Shared by the recall-round tests: the two pattern detectors without their learned margins, the
moderate policy, and a score that checks the anchored scan against the full (unanchored) pass."""

from __future__ import annotations

from llmrelay.safety.detectors._view import TextView
from llmrelay.safety.detectors.injection import InjectionDetector
from llmrelay.safety.detectors.toxicity import ToxicityDetector
from llmrelay.safety.policy import policy_for_level

TOXICITY = ToxicityDetector(linear=None)
INJECTION = InjectionDetector(linear=None)
MODERATE = policy_for_level("moderate")


def score(det: ToxicityDetector | InjectionDetector, text: str) -> float:
    """The strongest finding's score; the anchored scan must agree with the full pass."""
    fast = det.scan_view(TextView(text))
    full = det.scan_view(TextView(text), anchored=False)
    assert [(f.start, f.end, f.score) for f in fast] == [(f.start, f.end, f.score) for f in full]
    return max((f.score for f in fast), default=0.0)
