"""State shared by a fleet of gateway processes: the Redis client and its circuit, budget counters
that survive a dead Redis, the guarded Redis cache, the config version, and key revocation
broadcast. ``wire(services)`` attaches them to a settings generation.

    from llmrelay.shared_state import wire
    wire(services)     # from llmrelay.wiring, once per settings generation
"""

from __future__ import annotations

from .client import SharedRedis, attach, shared_redis
from .redis_health import RedisHealth, RedisUnavailable

__all__ = ["RedisHealth", "RedisUnavailable", "SharedRedis", "attach", "shared_redis", "wire"]


def wire(services: object) -> None:
    """Attach the shared Redis (if configured) and the start-up schema check to ``services``."""
    from ..stores.startup import add_schema_check
    from .fleet import attach_fleet

    shared = attach(services)
    add_schema_check(services)
    attach_fleet(services, shared)
