"""Budget counters that survive a dead Redis, by the policy in ``redis.on_unavailable``.

:class:`ResilientCounters` sends every operation to the Redis counters while Redis answers. When it
does not (or its circuit is open), ``fail_open`` carries on with per-process counters (a budget then
holds per instance until Redis returns) and ``fail_closed`` refuses the requests that a budget
applies to with 503 ``shared_state_unavailable``.

    counters = ResilientCounters(RedisCounters(url, client), MemoryCounters(clock), health, "fail_closed")

A reservation taken in Redis whose settle fails is left reserved there (over-counting spend, the
safe direction) until the counter's period ends.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from ..errors import SharedStateUnavailableError
from .redis_health import RedisHealth, RedisUnavailable, guarded

T = TypeVar("T")


class ResilientCounters:
    def __init__(self, remote: Any, local: Any, health: RedisHealth, policy: str = "fail_open") -> None:
        self.remote = remote
        self.local = local
        self.health = health
        self.policy = policy

    async def _either(self, remote: Callable[[], Awaitable[T]], local: Callable[[], Awaitable[T]],
                      refuse: bool) -> T:
        try:
            return await guarded(self.health, remote)  # type: ignore[no-any-return]
        except RedisUnavailable:
            if refuse and self.policy == "fail_closed":
                raise SharedStateUnavailableError(
                    "budgets cannot be checked: Redis (redis.url) is unreachable and redis.on_unavailable "
                    "is fail_closed; retry shortly", retry_after=1.0,
                ) from None
            return await local()

    async def reserve(
        self, keys: Sequence[str], limits: Sequence[int], amount: int, ttls: Sequence[int], brake: str
    ) -> int:
        return await self._either(lambda: self.remote.reserve(keys, limits, amount, ttls, brake),
                                  lambda: self.local.reserve(keys, limits, amount, ttls, brake), refuse=True)

    async def adjust(self, keys: Sequence[str], delta: int, ttls: Sequence[int]) -> list[int]:
        return await self._either(lambda: self.remote.adjust(keys, delta, ttls),
                                  lambda: self.local.adjust(keys, delta, ttls), refuse=False)

    async def get(self, keys: Sequence[str]) -> list[int]:
        return await self._either(lambda: self.remote.get(keys), lambda: self.local.get(keys), refuse=False)

    async def flag(self, key: str, ttl: int) -> bool:
        return await self._either(lambda: self.remote.flag(key, ttl), lambda: self.local.flag(key, ttl), refuse=False)

    async def clear(self, key: str) -> None:
        await self._either(lambda: self.remote.clear(key), lambda: self.local.clear(key), refuse=False)

    async def aclose(self) -> None:
        # The Redis client is shared (llmrelay.shared_state.client) and closed there.
        await self.local.aclose()


def open_shared_counters(services: Any) -> Any:
    """The budget counter store for these settings: Redis behind the health circuit, or memory."""
    from ..cost.counters import MemoryCounters, RedisCounters
    from .client import shared_redis

    shared = shared_redis(services)
    local = MemoryCounters(services.clock)
    if shared is None:
        return local
    remote = RedisCounters(shared.url, client=shared.client)
    return ResilientCounters(remote, local, shared.health, services.settings.redis.on_unavailable)
