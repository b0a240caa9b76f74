"""AI safety: detectors, policies, the engine that applies them, streaming output filtering,
external moderation, the tamper-evident audit log and privacy tools (export, erasure, retention).

    >>> from llmrelay.safety import SafetyEngine, policy_for_level
    >>> SafetyEngine().inspect("mail me at bob@example.com", policy_for_level("moderate")).action
    'redact'
"""

from __future__ import annotations

from .engine import Decision, Redactor, SafetyEngine
from .findings import CATEGORIES, Finding
from .policy import Policy, policy_for_level

__all__ = ["CATEGORIES", "Decision", "Finding", "Policy", "Redactor", "SafetyEngine", "policy_for_level"]
