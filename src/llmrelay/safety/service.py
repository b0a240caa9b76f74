"""Attach the safety parts to a :class:`~llmrelay.services.Services`: the shared engine, the audit
log (``services.audit``) and the privacy registry (``services.privacy``).

Called from ``llmrelay.wiring``. The engine's detectors are immutable and survive reloads; each
settings generation gets its own audit writer (they append to one chain, under the store's lock).
"""

from __future__ import annotations

from typing import Any

from .audit import AuditLog
from .engine import SafetyEngine
from .privacy import PrivacyRegistry


def engine_of(services: Any) -> SafetyEngine:
    engine: SafetyEngine = services.state.setdefault("safety_engine", SafetyEngine())
    return engine


def attach(services: Any) -> None:
    engine_of(services)
    registry = PrivacyRegistry()
    services.privacy = registry
    if not services.settings.safety.audit:
        return
    log = AuditLog.from_settings(services.settings, clock=services.clock.time)
    services.audit = log
    services.on_start.append(log.start)
    services.on_close.append(log.aclose)
    registry.register("audit", export=log.export_user, erase=log.erase_user)
