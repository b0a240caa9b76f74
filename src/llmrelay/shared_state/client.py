"""One Redis client and one :class:`RedisHealth` per process and ``redis.url``.

Kept in ``services.state`` so a reload keeps the connections and the up/down state; the last
settings generation to close shuts them. Timeouts are short and redis-py's own retries are off:
the gateway has a local fallback for everything it keeps in Redis, so waiting longer only makes a
request slower, never more correct.

    shared = shared_redis(services)          # None without redis.url
    if shared is not None:
        client, health = shared.client, shared.health
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from .redis_health import SOCKET_TIMEOUT_S, RedisHealth

_SLOT = "shared.redis"


@dataclass(slots=True)
class SharedRedis:
    url: str
    client: Any
    health: RedisHealth
    users: int = 0


def redis_client(url: str, timeout_s: float = SOCKET_TIMEOUT_S) -> Any:
    """An asyncio client with short socket timeouts and no built-in retries (bytes replies)."""
    try:
        import redis.asyncio as aioredis
        from redis.backoff import NoBackoff
        from redis.retry import Retry
    except ImportError:  # pragma: no cover - depends on the install
        raise ConfigError("redis.url is set but redis-py is not installed: pip install 'llmrelay[redis]'") from None
    return aioredis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
                                   retry=Retry(NoBackoff(), 0), retry_on_timeout=False)


def shared_redis(services: Any) -> SharedRedis | None:
    """The process's Redis for ``services.settings.redis.url``, created on first use."""
    url = services.settings.redis.url
    if not url:
        return None
    held: SharedRedis | None = services.state.get(_SLOT)
    if held is None or held.url != url:
        client = redis_client(url)
        held = SharedRedis(url, client, RedisHealth(client, clock=services.clock, metrics=services.metrics, url=url))
        services.state[_SLOT] = held
    return held


def attach(services: Any) -> SharedRedis | None:
    """Register this settings generation as a user of the shared Redis (closed with the last one)."""
    held = shared_redis(services)
    if held is None:
        return None
    held.users += 1
    held.health.metrics = services.metrics
    services.on_close.append(_closer(services, held))
    return held


def _closer(services: Any, held: SharedRedis) -> Callable[[], Awaitable[None]]:
    async def close() -> None:
        held.users -= 1
        if held.users > 0 and services.state.get(_SLOT) is held:
            return
        await held.health.aclose()
        await held.client.aclose()
        if services.state.get(_SLOT) is held:
            del services.state[_SLOT]

    return close
