"""The Redis cache backend behind the process's Redis circuit.

While Redis is down, lookups fail at once (a miss, by the cache's own rule) instead of each
waiting for a socket timeout; writes are dropped. The backend shares the process's Redis client.

    backend = guard_cache_backend(services, open_backend(settings, clock))
"""

from __future__ import annotations

from typing import Any

from ..caching.backends.base import CacheStats
from .client import shared_redis
from .redis_health import RedisHealth, guarded


class GuardedBackend:
    """Delegates to a Redis cache backend while the circuit allows; raises RedisUnavailable otherwise."""

    inline = False

    def __init__(self, inner: Any, health: RedisHealth) -> None:
        self.inner = inner
        self.health = health

    async def get(self, key: str) -> bytes | None:
        return await guarded(self.health, lambda: self.inner.get(key))  # type: ignore[no-any-return]

    async def set(self, key: str, group: str, value: bytes, ttl_s: float) -> None:
        await guarded(self.health, lambda: self.inner.set(key, group, value, ttl_s))

    async def delete(self, key: str) -> bool:
        return bool(await guarded(self.health, lambda: self.inner.delete(key)))

    async def clear(self, group: str | None = None) -> int:
        return int(await guarded(self.health, lambda: self.inner.clear(group)))

    async def stats(self) -> CacheStats:
        return await guarded(self.health, self.inner.stats)  # type: ignore[no-any-return]

    async def aclose(self) -> None:
        # The client is the process's shared one (closed by llmrelay.shared_state.client).
        return None


def guard_cache_backend(services: Any, backend: Any) -> Any:
    """Wrap a Redis cache backend on ``redis.url`` so it uses the shared client and circuit."""
    settings = services.settings
    if settings.cache.backend != "redis" or (settings.cache.url and settings.cache.url != settings.redis.url):
        return backend
    shared = shared_redis(services)
    if shared is None:
        return backend
    from ..caching.backends.redis import RedisBackend

    return GuardedBackend(RedisBackend(shared.url, services.clock, client=shared.client), shared.health)
