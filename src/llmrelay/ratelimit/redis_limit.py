"""Rate limits shared by every gateway process and machine, as token buckets in Redis.

One Lua script takes from the RPM and TPM buckets of one or several scopes atomically on the server
(all or nothing), using the Redis server's clock so machines with skewed clocks agree. redis-py is imported
lazily (the ``redis`` extra). If Redis cannot be reached the limiter falls back to a local bucket,
says so once in the log and counts it in ``llmrelay_ratelimit_backend_errors_total``, and retries
Redis after a short pause: a limit degrades to per-process, a request never hangs.

    limiter = RedisLimiter(redis_client_for("redis://127.0.0.1:6379/0"), "key:abc", rpm=60, tpm=None,
                           fallback=Limit.per_minute(60, None, clock), clock=clock)
    wait = await limiter.acquire(tokens=500)      # 0.0 = admitted, else seconds to wait
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from ..clock import Clock
from .bucket import AllOf, Limit

log = logging.getLogger("llmrelay.ratelimit")

# Seconds the client waits for Redis before falling back to the local limit.
REDIS_TIMEOUT_S = 1.0
# After a failure, the local limit is used for this long before Redis is tried again.
RETRY_REDIS_AFTER_S = 5.0
PERIOD_S = 60.0

# KEYS: per scope its rpm and tpm bucket (so 2 per scope). ARGV: period seconds, tokens, mode ("take"
# or "correct"), then per scope its rpm and tpm capacity (0 = none). A take takes from every scope or
# from none (a request under a key and a user limit spends both or neither). Returns the seconds to
# wait as a string (Lua numbers are truncated to integers in replies), "0" when admitted.
LUA_BUCKETS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local period, n, mode = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local scopes = #KEYS / 2
local function load(key, cap)
  local v = redis.call('HMGET', key, 'tokens', 'ts')
  local tokens, ts = tonumber(v[1]), tonumber(v[2])
  if tokens == nil then return cap end
  return math.min(cap, tokens + math.max(0, now - ts) * cap / period)
end
local function save(key, tokens)
  redis.call('HSET', key, 'tokens', tostring(tokens), 'ts', tostring(now))
  redis.call('PEXPIRE', key, math.floor(period * 2000))
end
if mode == 'correct' then
  for i = 1, scopes do
    local tcap = tonumber(ARGV[3 + 2 * i])
    if tcap > 0 then save(KEYS[2 * i], math.min(tcap, load(KEYS[2 * i], tcap) - n)) end
  end
  return '0'
end
local wait = 0
local r, tk = {}, {}
for i = 1, scopes do
  local rcap, tcap = tonumber(ARGV[2 + 2 * i]), tonumber(ARGV[3 + 2 * i])
  if rcap > 0 then
    r[i] = load(KEYS[2 * i - 1], rcap)
    if r[i] < 1 then wait = math.max(wait, (1 - r[i]) * period / rcap) end
  end
  if tcap > 0 then
    tk[i] = load(KEYS[2 * i], tcap)
    local need = math.min(n, tcap)
    if tk[i] < need then wait = math.max(wait, (need - tk[i]) * period / tcap) end
  end
end
if wait > 0 then return tostring(wait) end
for i = 1, scopes do
  if r[i] then save(KEYS[2 * i - 1], r[i] - 1) end
  if tk[i] then save(KEYS[2 * i], tk[i] - n) end
end
return '0'
"""


def redis_client_for(url: str) -> Any:
    """An asyncio Redis client with short timeouts (a slow Redis must not stall requests)."""
    try:
        import redis.asyncio as aioredis
    except ImportError as exc:  # pragma: no cover - depends on the install
        from ..errors import ConfigError

        raise ConfigError("redis.url is set but redis-py is not installed: pip install 'llmrelay[redis]'") from exc
    return aioredis.Redis.from_url(
        url, socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S, decode_responses=True
    )


class RedisLimiter:
    """RPM/TPM for one scope (or several taken together, see :meth:`all_of`), shared through
    Redis, with a local fallback."""

    __slots__ = ("_caps", "_down_until", "_keys", "_script", "client", "clock", "fallback", "health", "metrics")

    def __init__(
        self, client: Any, scope: str, rpm: int | None, tpm: int | None, fallback: Limit | AllOf, clock: Clock,
        metrics: Any = None, health: Any = None,
    ) -> None:
        self.client = client
        # The process's Redis circuit (llmrelay.shared_state); replaces the local pause when given.
        self.health = health
        self.fallback = fallback
        self.clock = clock
        self.metrics = metrics
        self._keys = [f"llmrelay:rl:{scope}:rpm", f"llmrelay:rl:{scope}:tpm"]
        self._caps = [rpm or 0, tpm or 0]
        self._script = client.register_script(LUA_BUCKETS)
        self._down_until = 0.0

    @classmethod
    def all_of(cls, limiters: Sequence[RedisLimiter]) -> RedisLimiter:
        """One limiter taking from every given scope or from none, in one script call (so a
        user limit that refuses spends nothing of the key's). Cheap: shares the parts' script."""
        first = limiters[0]
        both = cls.__new__(cls)
        both.client, both.health, both.clock, both.metrics = first.client, first.health, first.clock, first.metrics
        both._script = first._script
        both._keys = [k for part in limiters for k in part._keys]
        both._caps = [c for part in limiters for c in part._caps]
        both.fallback = AllOf(tuple(limit for part in limiters for limit in _parts(part.fallback)))
        both._down_until = max(part._down_until for part in limiters)
        return both

    @property
    def idle(self) -> bool:
        """The state lives in Redis (with its own expiry): only the local fallback can be lost."""
        return self.fallback.idle if isinstance(self.fallback, Limit) else False

    async def _call(self, tokens: float, mode: str) -> float:
        return float(await self._script(keys=self._keys, args=[PERIOD_S, tokens, mode, *self._caps]))

    async def _run(self, tokens: float, mode: str) -> float | None:
        if self.health is not None:
            return await self._run_shared(tokens, mode)
        if self.clock.monotonic() < self._down_until:
            return None
        try:
            reply = await self._call(tokens, mode)
        except Exception as exc:  # any client or connection error: degrade, never hang or fail
            if self._down_until == 0.0:
                log.warning("redis unreachable for rate limits (%s); using local limits for now", exc)
            self._down_until = self.clock.monotonic() + RETRY_REDIS_AFTER_S
            if self.metrics is not None:
                self.metrics.ratelimit_backend_errors.inc()
            return None
        if self._down_until:
            log.info("redis reachable again; rate limits are shared again")
            self._down_until = 0.0
        return reply

    async def _run_shared(self, tokens: float, mode: str) -> float | None:
        if not self.health.available():
            return None
        try:
            reply = await self._call(tokens, mode)
        except Exception as exc:  # the circuit logs the transition once
            self.health.failed(exc)
            if self.metrics is not None:
                self.metrics.ratelimit_backend_errors.inc()
            return None
        self.health.succeeded()
        return reply

    async def acquire(self, tokens: float) -> float:
        wait = await self._run(tokens, "take")
        return self.fallback.try_acquire(tokens) if wait is None else wait

    async def correct(self, delta_tokens: float) -> None:
        if any(self._caps[1::2]) and delta_tokens and await self._run(delta_tokens, "correct") is None:
            self.fallback.correct_now(delta_tokens)


def _parts(fallback: Limit | AllOf) -> tuple[Limit, ...]:
    return fallback.limits if isinstance(fallback, AllOf) else (fallback,)
