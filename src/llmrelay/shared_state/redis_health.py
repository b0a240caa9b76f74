"""Is Redis reachable? One small circuit per process, shared by every Redis user.

Every component that keeps shared state in Redis (rate limits, budget counters, the cache) asks
:meth:`RedisHealth.available` before a round trip and reports the outcome. After a failure Redis is
not tried on the request path for ``retry_after_s``; a background probe pings it meanwhile and
closes the circuit as soon as it answers. So a dead Redis costs at most one short socket timeout,
never a hang, and each transition is logged once and shown in ``llmrelay_redis_up``.

    health = RedisHealth(client, clock=SystemClock(), metrics=metrics)
    if health.available():
        try:
            value = await client.get("k")
            health.succeeded()
        except Exception as exc:
            health.failed(exc)          # -> fall back to local state
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from ..clock import Clock

log = logging.getLogger("llmrelay.redis")

# Seconds a request waits for Redis before falling back (connect and each reply).
SOCKET_TIMEOUT_S = 0.5
# After a failure, the request path leaves Redis alone this long; the probe runs meanwhile.
RETRY_AFTER_S = 1.0
PROBE_INTERVAL_S = 0.25


class RedisUnavailable(Exception):
    """Redis was not tried (circuit open) or did not answer; callers fall back to local state."""


class RedisHealth:
    """Up/down state of one Redis, with a background probe while it is down."""

    def __init__(self, client: Any, *, clock: Clock, metrics: Any = None, url: str = "",
                 retry_after_s: float = RETRY_AFTER_S, probe_interval_s: float = PROBE_INTERVAL_S) -> None:
        self.client = client
        self.clock = clock
        self.metrics = metrics
        self.url = url
        self.retry_after_s = retry_after_s
        self.probe_interval_s = probe_interval_s
        self.up = True
        self.last_error: str | None = None
        self._retry_at = 0.0
        self._probe: asyncio.Task[None] | None = None
        self._set_gauge()

    def available(self) -> bool:
        """Whether the request path may try Redis now (up, or the pause after a failure is over)."""
        return self.up or self.clock.monotonic() >= self._retry_at

    def succeeded(self) -> None:
        if not self.up:
            self.up = True
            self.last_error = None
            log.warning("redis at %s is reachable again; shared limits, budgets and cache are back", self.url)
            self._set_gauge()

    def failed(self, exc: BaseException) -> None:
        self._retry_at = self.clock.monotonic() + self.retry_after_s
        self.last_error = f"{type(exc).__name__}: {exc}"
        if self.up:
            self.up = False
            # Once per transition: a dead Redis must not write a line per request.
            log.error("redis at %s is unreachable (%s); serving on local limits and counters until it returns",
                      self.url, self.last_error)
            self._set_gauge()
        self._start_probe()

    def status(self) -> str | None:
        """None when healthy, else what /health/ready shows (``redis unreachable``)."""
        return None if self.up else "redis unreachable"

    async def check(self) -> bool:
        """Ping once (bounded by the client's socket timeout) and record the outcome."""
        was_up = self.up
        try:
            await self.client.ping()
        except Exception as exc:
            self.failed(exc)
            return False
        if not was_up:
            await self._drop_stale()
        self.succeeded()
        return True

    async def _drop_stale(self) -> None:
        # Pooled connections opened before an outage are dead; each would fail once and trip the
        # circuit again, so drop them all when Redis returns.
        pool = getattr(self.client, "connection_pool", None)
        if pool is not None:
            with contextlib.suppress(Exception):
                await pool.disconnect()

    def _start_probe(self) -> None:
        if self._probe is not None and not self._probe.done():
            return
        try:
            self._probe = asyncio.get_running_loop().create_task(self._probe_loop())
        except RuntimeError:  # no loop (a synchronous caller): the next request retries instead
            self._probe = None

    async def _probe_loop(self) -> None:
        while not self.up:
            await asyncio.sleep(self.probe_interval_s)
            try:
                await self.client.ping()
            except Exception as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                continue
            await self._drop_stale()
            self.succeeded()

    def _set_gauge(self) -> None:
        if self.metrics is not None:
            self.metrics.redis_up.set(1 if self.up else 0)

    async def aclose(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._probe
            self._probe = None


async def guarded(health: RedisHealth, op: Any) -> Any:
    """Run ``await op()`` if the circuit allows it; raise :class:`RedisUnavailable` otherwise or on
    any Redis error (after recording it)."""
    if not health.available():
        raise RedisUnavailable(health.last_error or "redis unreachable")
    try:
        result = await op()
    except Exception as exc:
        health.failed(exc)
        raise RedisUnavailable(str(exc)) from exc
    health.succeeded()
    return result
