"""Dedup across gateway instances: a request already in flight on another instance is waited for,
not sent upstream again.

Active when the cache is shared (``cache.backend: redis`` on ``redis.url``) and
``dedup.cross_instance_wait_s`` > 0. Within one process the dedup layer's flights already share one
call; this coordinates the *leaders* of those flights, one per instance, through Redis:

- the leader takes a short lock on the canonical cache key (``SET lock NX PX``, renewed while its
  call runs), calls upstream, writes the complete answer to the shared cache, then releases the lock;
- a leader on another instance that finds the lock polls (small growing pauses) until the entry
  appears and serves it as a joined request (``ctx.joined``, cost 0, the call's cost saved); if the
  lock goes away without an entry (the leader failed, or its answer was not storable) the first
  poller to retake it calls upstream instead; after ``cross_instance_wait_s`` it stops waiting and
  calls upstream itself.

Each poll is one atomic script (entry there? else try to take the lock), so taking over from a
failed leader costs nothing extra. Every Redis call goes through the process's Redis circuit
(:mod:`llmrelay.shared_state`): with Redis down a request calls upstream at once, never hangs.

    fleet = fleet_flights(services)                 # None unless configured
    stream = fleet.coordinated(key, request, ctx, next) if fleet else next(request, ctx)
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from ..context import RequestContext
from ..streaming import Assembler, closing
from ..types import ChatRequest, Chunk
from .backends.redis import PREFIX as ENTRY_PREFIX
from .entry import CachedAnswer, replay

if TYPE_CHECKING:
    from ..pipeline import Handler
    from ..services import Services
    from ..shared_state.redis_health import RedisHealth
    from .service import ResponseCache

LOCK_PREFIX = "llmrelay:flight:"
# Left in ctx.notes when the answer was written to the cache here (the cache layer need not repeat it).
STORED_NOTE = "dedup.stored"
# A follower's pauses between polls: short at first (most answers are quick), growing to a cap.
FIRST_POLL_S = 0.01
MAX_POLL_S = 0.2

_LEAD, _DONE = 1, 2
# KEYS: lock, entry. ARGV: token, lock lifetime (ms). 2 = the answer is cached; 1 = lock taken; 0 = held.
_CLAIM = """
if redis.call('exists', KEYS[2]) == 1 then return 2 end
if redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0
"""
# Renew or release the lock only while it is still ours (it may have expired and been retaken).
_RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


class Lease:
    """A held in-flight lock, renewed in the background until released."""

    __slots__ = ("lock", "renewal", "token")

    def __init__(self, lock: str, token: str) -> None:
        self.lock, self.token = lock, token
        self.renewal: asyncio.Task[None] | None = None


class FleetFlights:
    """The cross-instance half of dedup: claim a key (lead, or wait for the other leader's answer)."""

    def __init__(self, client: Any, health: RedisHealth, cache: ResponseCache, *, wait_s: float, lock_s: float,
                 clock: Any, metrics: Any = None, token: Callable[[], str] = lambda: secrets.token_hex(12)) -> None:
        self.health = health
        self.cache = cache
        self.wait_s, self.lock_ms = wait_s, max(1, int(lock_s * 1000))
        self.clock = clock
        self.metrics = metrics
        self._token = token
        self._claim = client.register_script(_CLAIM)
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)

    async def claim(self, key: str) -> Lease | CachedAnswer | None:
        """Lead (a :class:`Lease`), the answer another instance's call produced, or None: call
        upstream without coordination (Redis unavailable, or waited ``wait_s`` in vain)."""
        from ..shared_state.redis_health import RedisUnavailable, guarded

        lock, entry, token = LOCK_PREFIX + key, ENTRY_PREFIX + key, self._token()
        deadline = self.clock.monotonic() + self.wait_s
        pause, waited = FIRST_POLL_S, False
        while True:
            try:
                state = int(await guarded(self.health, lambda: self._claim(keys=[lock, entry], args=[token, self.lock_ms])))
            except RedisUnavailable:
                return self._outcome("unavailable", None)
            if state == _LEAD:
                lease = Lease(lock, token)
                lease.renewal = asyncio.get_running_loop().create_task(self._keep(lease))
                return self._outcome("takeover" if waited else "led", lease)
            if state == _DONE:
                answer = await self.cache.lookup(key)
                if answer is not None:
                    return self._outcome("joined", answer)
                # Expired between the check and the read: the next claim will find the lock free.
            left = deadline - self.clock.monotonic()
            if left <= 0:
                return self._outcome("timeout", None)
            waited = True
            await self.clock.sleep(min(pause, left))
            pause = min(pause * 1.5, MAX_POLL_S)

    async def _keep(self, lease: Lease) -> None:
        """Renew the lock at a third of its lifetime while the call runs (stops once it is lost)."""
        from ..shared_state.redis_health import RedisUnavailable, guarded

        while True:
            await self.clock.sleep(self.lock_ms / 3000)
            with contextlib.suppress(RedisUnavailable):
                held = await guarded(self.health, lambda: self._renew(keys=[lease.lock], args=[lease.token, self.lock_ms]))
                if not int(held):
                    return

    async def release(self, lease: Lease) -> None:
        from ..shared_state.redis_health import RedisUnavailable, guarded

        if lease.renewal is not None:
            lease.renewal.cancel()
        # If Redis is unreachable the lock simply expires (within the lock lifetime).
        with contextlib.suppress(RedisUnavailable):
            await guarded(self.health, lambda: self._release(keys=[lease.lock], args=[lease.token]))

    def _outcome(self, outcome: str, value: Any) -> Any:
        if self.metrics is not None:
            self.metrics.dedup_fleet.labels(outcome=outcome).inc()
        return value

    async def coordinated(self, key: str, request: ChatRequest, ctx: RequestContext,
                          next: Handler) -> AsyncIterator[Chunk]:
        """The upstream answer for a flight's leader: another instance's, or ours (then cached
        before the lock is released, so the instances waiting for it find it)."""
        claim = await self.claim(key)
        if isinstance(claim, CachedAnswer):
            serve_joined(ctx, claim)
            for chunk in replay(claim.result, request.stream):
                yield chunk
            return
        asm = Assembler()
        try:
            async with closing(next(request, ctx)) as stream:
                async for chunk in stream:
                    asm.add(chunk)
                    yield chunk
            if claim is not None and asm.finish_reason is not None and ctx.error is None:
                await self.cache.store(key, request, ctx, asm.result(provider=ctx.provider), wait=True)
                ctx.notes[STORED_NOTE] = True
        finally:
            if claim is not None:
                await self.release(claim)


def serve_joined(ctx: RequestContext, answer: CachedAnswer) -> None:
    """Account an answer another instance paid for: joined, nothing spent, its cost saved."""
    ctx.joined = True
    ctx.provider, ctx.provider_kind, ctx.upstream_model = answer.provider, answer.provider_kind, answer.upstream_model
    ctx.usage = answer.result.usage
    ctx.cost_usd, ctx.cost_saved_usd = 0.0, answer.cost_usd


def fleet_flights(services: Services) -> FleetFlights | None:
    """Cross-instance dedup for these settings, or None when the cache is not shared through Redis."""
    settings = services.settings
    cfg = settings.cache
    shared_cache = cfg.enabled and cfg.backend == "redis" and cfg.url in (None, settings.redis.url)
    if not shared_cache or settings.dedup.cross_instance_wait_s <= 0:
        return None
    from ..shared_state.client import shared_redis
    from .service import response_cache

    shared = shared_redis(services)
    if shared is None:
        return None
    return FleetFlights(shared.client, shared.health, response_cache(services),
                        wait_s=settings.dedup.cross_instance_wait_s, lock_s=settings.dedup.cross_instance_lock_s,
                        clock=services.clock, metrics=services.metrics)
