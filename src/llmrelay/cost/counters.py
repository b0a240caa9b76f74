"""Budget counters: reserve-then-settle spend counters that concurrent requests cannot overrun.

Amounts are integers in micro-dollars, so increments are exact. :meth:`CounterStore.reserve`
checks *and* adds in one atomic step for all the budgets a request falls under: in memory that is
one synchronous block (no await between check and add, so asyncio cannot interleave), in Redis one
Lua script, so the guarantee holds across every gateway process.

    store = MemoryCounters(clock)
    refused = await store.reserve(["b:team:a:month:2025-01"], [1_000_000], 250, [86400], brake="b:brake")
    # refused == -1: reserved; 0..n-1: that budget would overflow; -2: the emergency brake is on
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Protocol

OK = -1
BRAKE = -2


class CounterStore(Protocol):
    async def reserve(
        self, keys: Sequence[str], limits: Sequence[int], amount: int, ttls: Sequence[int], brake: str
    ) -> int: ...

    async def adjust(self, keys: Sequence[str], delta: int, ttls: Sequence[int]) -> list[int]: ...

    async def get(self, keys: Sequence[str]) -> list[int]: ...

    async def flag(self, key: str, ttl: int) -> bool:
        """Set ``key`` if absent; True when this call set it (a once-only latch)."""
        ...

    async def clear(self, key: str) -> None: ...

    async def aclose(self) -> None: ...


class MemoryCounters:
    """Single-process counters; every method completes without suspending, hence atomic."""

    def __init__(self, clock: Any = None) -> None:
        self._clock = clock
        self._values: dict[str, tuple[int, float]] = {}

    def _now(self) -> float:
        return self._clock.time() if self._clock is not None else time.time()

    def _get(self, key: str, now: float) -> int:
        item = self._values.get(key)
        if item is None or item[1] <= now:
            return 0
        return item[0]

    async def reserve(
        self, keys: Sequence[str], limits: Sequence[int], amount: int, ttls: Sequence[int], brake: str
    ) -> int:
        now = self._now()
        if self._get(brake, now):
            return BRAKE
        for i, (key, limit) in enumerate(zip(keys, limits, strict=True)):
            if self._get(key, now) + amount > limit:
                return i
        for key, ttl in zip(keys, ttls, strict=True):
            self._values[key] = (self._get(key, now) + amount, now + ttl)
        return OK

    async def adjust(self, keys: Sequence[str], delta: int, ttls: Sequence[int]) -> list[int]:
        now = self._now()
        out = []
        for key, ttl in zip(keys, ttls, strict=True):
            value = max(0, self._get(key, now) + delta)
            self._values[key] = (value, now + ttl)
            out.append(value)
        if len(self._values) > 10_000:
            self._values = {k: v for k, v in self._values.items() if v[1] > now}
        return out

    async def get(self, keys: Sequence[str]) -> list[int]:
        return self.peek(keys)

    def peek(self, keys: Sequence[str]) -> list[int]:
        """:meth:`get` without the coroutine (callers that know the store is in-process)."""
        now = self._now()
        values = self._values
        out = []
        for k in keys:
            item = values.get(k)
            out.append(0 if item is None or item[1] <= now else item[0])
        return out

    async def flag(self, key: str, ttl: int) -> bool:
        now = self._now()
        if self._get(key, now):
            return False
        self._values[key] = (1, now + ttl)
        return True

    async def clear(self, key: str) -> None:
        self._values.pop(key, None)

    async def aclose(self) -> None:
        return None


# KEYS = [brake, budget_1..n]; ARGV = [amount, limit_1, ttl_1, ..., limit_n, ttl_n]
_RESERVE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return -2 end
local amount = tonumber(ARGV[1])
for j = 2, #KEYS do
  local used = tonumber(redis.call('GET', KEYS[j]) or '0')
  if used + amount > tonumber(ARGV[2 * (j - 1)]) then return j - 2 end
end
for j = 2, #KEYS do
  redis.call('INCRBY', KEYS[j], amount)
  redis.call('EXPIRE', KEYS[j], tonumber(ARGV[2 * (j - 1) + 1]))
end
return -1
"""

# KEYS = counters; ARGV = [delta, ttl_1..n]. Never below zero (a release after a reset).
_ADJUST = """
local out = {}
for j = 1, #KEYS do
  local v = redis.call('INCRBY', KEYS[j], tonumber(ARGV[1]))
  if v < 0 then redis.call('SET', KEYS[j], 0); v = 0 end
  redis.call('EXPIRE', KEYS[j], tonumber(ARGV[j + 1]))
  out[j] = v
end
return out
"""


class RedisCounters:
    """Counters in Redis (``redis.url``), shared by all gateway processes; needs the ``redis`` extra."""

    def __init__(self, url: str, client: Any = None) -> None:
        if client is None:
            try:
                import redis.asyncio as aioredis
            except ImportError:
                from ..errors import ConfigError

                raise ConfigError("redis.url is set but the redis package is missing; pip install 'llmrelay[redis]'") from None
            # A blocking pool: a burst of requests waits for a connection instead of failing.
            pool = aioredis.BlockingConnectionPool.from_url(url, max_connections=64, timeout=15,
                                                             socket_connect_timeout=15)
            client = aioredis.Redis(connection_pool=pool)
        self.url = url
        self._r = client
        self._reserve = client.register_script(_RESERVE)
        self._adjust = client.register_script(_ADJUST)

    async def reserve(
        self, keys: Sequence[str], limits: Sequence[int], amount: int, ttls: Sequence[int], brake: str
    ) -> int:
        argv: list[int] = [amount]
        for limit, ttl in zip(limits, ttls, strict=True):
            argv += [limit, max(1, ttl)]
        return int(await self._reserve(keys=[brake, *keys], args=argv))

    async def adjust(self, keys: Sequence[str], delta: int, ttls: Sequence[int]) -> list[int]:
        if not keys:
            return []
        values = await self._adjust(keys=list(keys), args=[delta, *(max(1, t) for t in ttls)])
        return [int(v) for v in values]

    async def get(self, keys: Sequence[str]) -> list[int]:
        if not keys:
            return []
        return [int(v or 0) for v in await self._r.mget(list(keys))]

    async def flag(self, key: str, ttl: int) -> bool:
        return bool(await self._r.set(key, 1, nx=True, ex=max(1, ttl)))

    async def clear(self, key: str) -> None:
        await self._r.delete(key)

    async def aclose(self) -> None:
        await self._r.aclose()


def open_counters(redis_url: str | None, clock: Any = None) -> CounterStore:
    return RedisCounters(redis_url) if redis_url else MemoryCounters(clock)
