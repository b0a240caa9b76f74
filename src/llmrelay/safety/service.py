"""Attach the safety parts to a :class:`~llmrelay.services.Services`: the shared engine, the audit
log (``services.audit``) and the privacy registry (``services.privacy``).

Called from ``llmrelay.wiring``. The engine's detectors are immutable and survive reloads; each
settings generation gets its own audit writer (they append to one chain, under the store's lock).
The learned scorer (``safety.learned``) and the classifiers (``safety.classifiers``) are part of the
engine; a reload that changes either setting builds a new engine.
"""

from __future__ import annotations

import asyncio
from typing import Any

from .audit import AuditLog
from .classifier import classifiers_from
from .engine import SafetyEngine
from .learned import scorer_for
from .privacy import PrivacyRegistry


def engine_of(services: Any) -> SafetyEngine:
    cfg = services.settings.safety
    # What the engine is built from: a reload that changes either builds a new one.
    key = (cfg.learned, repr(cfg.classifiers))
    cached = services.state.get("safety_engine")
    if isinstance(cached, SafetyEngine) and services.state.get("safety_engine_key") == key:
        return cached
    engine = engine_for(cfg)
    services.state["safety_engine"], services.state["safety_engine_key"] = engine, key
    return engine


def engine_for(cfg: Any) -> SafetyEngine:
    """The engine a ``safety`` config section asks for (detectors, learned scorer, classifiers)."""
    return SafetyEngine(learned=scorer_for(cfg.learned), classifiers=classifiers_from(cfg.classifiers))


def _warm(services: Any, engine: SafetyEngine) -> None:
    """Load the models in the background at start, so the first prompt does not pay for them."""
    warmers = [m.scan for m in (engine.learned, *engine.classifiers) if m is not None]
    if not warmers:
        return
    task: list[asyncio.Future[Any]] = []

    def warm_all() -> None:
        for scan in warmers:
            scan("warm up")

    async def start() -> None:
        task.append(asyncio.ensure_future(asyncio.to_thread(warm_all)))

    async def close() -> None:
        for t in task:
            await asyncio.gather(t, return_exceptions=True)  # a thread cannot be cancelled; it is short

    services.on_start.append(start)
    services.on_close.append(close)


def attach(services: Any) -> None:
    engine = engine_of(services)
    if services.settings.safety.level != "off":
        _warm(services, engine)
    registry = PrivacyRegistry()
    services.privacy = registry
    if not services.settings.safety.audit:
        return
    log = AuditLog.from_settings(services.settings, clock=services.clock.time)
    services.audit = log
    services.on_start.append(log.start)
    services.on_close.append(log.aclose)
    registry.register("audit", export=log.export_user, erase=log.erase_user)
