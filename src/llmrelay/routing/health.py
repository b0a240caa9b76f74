"""Active health checks, the start-up check, and the router status the admin API shows.

At start-up each provider that serves a deployment is probed once in the background (the relay's
start is not delayed): a deployment that cannot be reached or whose key is refused is logged
clearly and its breaker opened, so requests go around it until a trial succeeds. With
``routing.health_check_interval_s`` set, the probe repeats on that interval.

    >>> # GET /admin/router (server) -> router_status(relay.services)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any

from ..errors import AuthenticationError, LLMRelayError, PermissionDeniedError, ProviderUnavailableError
from ..services import Services
from .circuit import STATE_VALUE
from .state import STATE_KEY, DeploymentState

log = logging.getLogger("llmrelay.routing")

# A probe that takes longer than this counts as a failure, seconds.
PROBE_TIMEOUT_S = 10.0
# Errors that mean the deployment cannot serve anything (not "busy" or "this request is bad").
_FATAL = (AuthenticationError, PermissionDeniedError, ProviderUnavailableError)


async def probe(services: Services, table: Mapping[str, DeploymentState], *, startup: bool = False) -> dict[str, str | None]:
    """Check every provider used by a deployment; returns provider -> problem (None when healthy)."""
    names = sorted({d.provider for d in table.values() if d.provider in services.providers})
    results = await asyncio.gather(*(_probe_one(services, n) for n in names))
    report = dict(zip(names, results, strict=True))
    for name, problem in report.items():
        deps = [d for d in table.values() if d.provider == name]
        if problem is None:
            continue
        (log.error if startup else log.warning)(
            "provider %r (%s) failed its %s check: %s; requests will be routed around it",
            name, services.providers[name].settings.kind, "start-up" if startup else "health", problem,
        )
        for d in deps:
            d.breaker.trip()
            d.last_error = problem
            if services.metrics is not None:
                services.metrics.circuit_state.labels(d.provider, d.model).set(STATE_VALUE["open"])
    return report


async def _probe_one(services: Services, name: str) -> str | None:
    provider = services.providers[name]
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_S):
            await provider.list_models()
    except TimeoutError:
        return f"no answer within {PROBE_TIMEOUT_S:.0f} s"
    except _FATAL as exc:
        return f"{type(exc).__name__}: {exc.message}"
    except LLMRelayError:
        # Some compatible servers have no model list, or refuse it to a key that may chat: only
        # the fatal errors above say the deployment is broken.
        return None
    except Exception as exc:  # a provider bug must not kill the background task
        return f"{type(exc).__name__}: {exc}"
    return None


def register_health_checks(services: Services, table: Mapping[str, DeploymentState]) -> None:
    """Add the start-up check and the periodic health checks to the services' lifecycle."""
    interval = services.settings.routing.health_check_interval_s
    tasks: list[asyncio.Task[None]] = []

    async def loop() -> None:
        await probe(services, table, startup=True)
        while interval:
            await services.clock.sleep(interval)
            await probe(services, table)

    async def start() -> None:
        if table and services.providers:
            tasks.append(asyncio.get_running_loop().create_task(loop(), name="llmrelay-health"))

    async def stop() -> None:
        for t in tasks:
            t.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        tasks.clear()

    services.on_start.append(start)
    services.on_close.append(stop)


def router_status(services: Services) -> list[dict[str, Any]]:
    """One row per deployment: breaker state, in-flight count, latency, cooldown, counts."""
    table: Mapping[str, DeploymentState] = services.state.get(STATE_KEY, {})
    now = services.clock.monotonic()
    rows = []
    for d in table.values():
        rows.append(
            {
                "deployment": d.key,
                "provider": d.provider,
                "model": d.model,
                "circuit": d.breaker.state,
                "retry_in_s": round(d.breaker.retry_in, 3),
                "in_flight": d.in_flight,
                "latency_ms": None if d.latency_s is None else round(d.latency_s * 1000, 2),
                "cooldown_s": round(max(0.0, d.cooldown_until - now), 3),
                "successes": d.successes,
                "failures": d.failures,
                "last_error": d.last_error,
            }
        )
    return rows
