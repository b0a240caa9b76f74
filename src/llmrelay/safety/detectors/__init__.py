"""Detector families, one module each: pii, secrets, injection, toxicity, custom rules.

Each module exposes a class that compiles its patterns once; :func:`default_detectors` builds the
set the engine uses. Adding a family is adding a module with a class that follows
:class:`~llmrelay.safety.findings.Detector`.
"""

from __future__ import annotations

from ..findings import Detector
from .adversarial import AdversarialSuffixDetector
from .directives import DirectiveDetector
from .injection import InjectionDetector
from .pii import PIIDetector
from .secrets import SecretDetector
from .toxicity import ToxicityDetector


def default_detectors() -> tuple[Detector, ...]:
    return (PIIDetector(), SecretDetector(), InjectionDetector(), AdversarialSuffixDetector(), DirectiveDetector(), ToxicityDetector())


__all__ = ["AdversarialSuffixDetector", "DirectiveDetector", "InjectionDetector", "PIIDetector", "SecretDetector", "ToxicityDetector", "default_detectors"]
