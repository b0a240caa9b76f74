"""What ``/health/ready`` says about shared state: degraded or not, and the fleet's config versions.

With Redis unreachable the gateway still serves on local limits (``fail_open``): ready, with
``degraded: redis unreachable`` in the body. With ``redis.on_unavailable: fail_closed`` budgets
refuse requests, so the instance reports not ready (503) and an orchestrator routes around it.

    extra, refusal = await shared_status(services)
"""

from __future__ import annotations

from typing import Any

from .client import shared_redis
from .fleet import fleet_of


async def shared_status(services: Any) -> tuple[dict[str, Any], str | None]:
    """``(fields for the body, reason to answer 503 or None)``."""
    out: dict[str, Any] = {}
    fleet = fleet_of(services)
    if fleet is not None:
        out["config_version"] = fleet.version
    shared = shared_redis(services)
    if shared is None:
        return out, None
    health = shared.health
    if health.available():
        await health.check()  # one ping, bounded by the client's short socket timeout
    if fleet is not None and health.up:
        out["fleet_config_versions"] = await fleet.versions()
    problem = health.status()
    if problem is None:
        return out, None
    out["degraded"] = problem
    if services.settings.redis.on_unavailable == "fail_closed":
        return out, f"{problem} and redis.on_unavailable is fail_closed: budgets refuse requests"
    return out, None
