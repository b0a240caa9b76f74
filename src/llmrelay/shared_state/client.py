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
POOL_SIZE = 16
# Longest a request waits for a free pooled connection during a burst.
POOL_WAIT_S = 2.0
# Connects happen at start-up (the pool is warmed) and rarely after; a busy event loop can take
# longer than the reply timeout to finish one, which must not count as Redis being down.
CONNECT_TIMEOUT_S = 1.0


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
    # A small blocking pool: a burst waits briefly for a free connection (a script takes well under a
    # millisecond) rather than opening hundreds at once, whose connects time out on a busy host, or
    # failing with "too many connections" (which would wrongly open the circuit); a dead Redis still
    # fails in timeout_s (``redis.timeout_s``).
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=POOL_SIZE, timeout=POOL_WAIT_S, socket_timeout=timeout_s,
        socket_connect_timeout=CONNECT_TIMEOUT_S, retry=Retry(NoBackoff(), 0), retry_on_timeout=False)
    return aioredis.Redis(connection_pool=pool)


def shared_redis(services: Any) -> SharedRedis | None:
    """The process's Redis for ``services.settings.redis.url``, created on first use."""
    url = services.settings.redis.url
    if not url:
        return None
    timeout_s = services.settings.redis.timeout_s
    held: SharedRedis | None = services.state.get(_SLOT)
    if held is None or held.url != url:
        client = redis_client(url, timeout_s)
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
    services.on_start.append(_warm(held))
    services.on_close.append(_closer(services, held))
    return held


def _warm(held: SharedRedis) -> Callable[[], Awaitable[None]]:
    async def warm() -> None:
        """Open the pool's connections before traffic arrives, so a burst finds them ready."""
        import asyncio

        if not held.health.up:
            return
        results = await asyncio.gather(*(held.client.ping() for _ in range(POOL_SIZE)), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            held.health.failed(errors[0])

    return warm


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
