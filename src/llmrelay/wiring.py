"""Attach the shared components (pricing, stores, metrics, audit) to a new :class:`Services`.

Called once per settings generation, before the pipeline is built. Each component is created here
from the settings, or carried over from ``services.state`` when it must outlive a reload.
"""

from __future__ import annotations

from .cost.wiring import wire_cost
from .keys import key_authenticator
from .metrics import Metrics
from .services import Services


def wire_services(services: Services) -> None:
    # Metrics outlive reloads: counters must not reset when the config changes.
    services.metrics = services.state.setdefault("metrics", Metrics())
    services.keys = key_authenticator(services)
    # Fleet state (llmrelay.shared_state): Redis client and circuit, schema check, key broadcast.
    from .shared_state import wire as wire_shared_state

    wire_shared_state(services)
    wire_cost(services)
    # Safety engine, audit log (services.audit) and the privacy registry (services.privacy).
    from .safety.service import attach as wire_safety

    wire_safety(services)
    # GDPR hooks of the stores wired before the privacy registry existed (ledger, keys).
    from .cost.privacy import register_ledger_privacy
    from .keys import register_key_privacy

    register_ledger_privacy(services)
    register_key_privacy(services)
    # Tracing (llmrelay.ops.tracing): published in services.state before the router is built.
    from .ops.tracing import wire_tracing

    wire_tracing(services)
