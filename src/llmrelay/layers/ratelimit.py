"""The ratelimit layer: requests and tokens per minute per virtual key (``ctx.key.rpm`` /
``ctx.key.tpm``), waiting in a priority queue with fair sharing, then 429.

Tokens are estimated before the call (prompt characters / 4 plus ``max_tokens``) and corrected from
``ctx.usage`` once the answer is done. With ``redis.url`` set, the buckets live in Redis so a
key's limit holds across every gateway process and machine (see ``llmrelay.ratelimit.redis_limit``).
Per-deployment limits are the router's job (it skips a deployment without capacity).

A request without a key, or whose key has no limits, passes through at the cost of one attribute
read.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from ..context import RequestContext
from ..errors import RateLimitError
from ..pipeline import Handler
from ..ratelimit.bucket import Limit
from ..ratelimit.estimate import estimate_tokens
from ..ratelimit.redis_limit import RedisLimiter
from ..services import Services
from ..shared_state.client import shared_redis
from ..types import ChatRequest, Chunk
from .router import shared_queue

# services.state keys: these outlive a config reload (a reload must not reset anyone's limit).
LIMITS_KEY = "ratelimit.keys"
REDIS_KEY = "ratelimit.redis"


def build(services: Services, next: Handler) -> Handler | None:
    if next is None:
        return None
    clock = services.clock
    queue = shared_queue(services)
    limits: dict[str, tuple[tuple[int | None, int | None], Any]] = services.state.setdefault(LIMITS_KEY, {})
    max_wait = services.settings.ratelimit.max_wait_s
    # The process's Redis client and circuit (llmrelay.shared_state), shared with budgets and cache.
    shared = shared_redis(services)
    client = shared.client if shared is not None else None
    health = shared.health if shared is not None else None
    metrics = services.metrics

    def limiter_for(key: Any) -> Any:
        conf = (key.rpm, key.tpm)
        entry = limits.get(key.id)
        if entry is None or entry[0] != conf:
            local = Limit.per_minute(key.rpm, key.tpm, clock)
            assert local is not None
            limiter: Any = local if client is None else RedisLimiter(client, f"key:{key.id}", key.rpm, key.tpm, local, clock, metrics, health)
            entry = limits[key.id] = (conf, limiter)
        return entry[1]

    def layer(request: ChatRequest, ctx: RequestContext) -> AsyncIterator[Chunk]:
        key = ctx.key
        if key is None or not (getattr(key, "rpm", None) or getattr(key, "tpm", None)):
            return next(request, ctx)  # no limit: no generator level per chunk
        return limited(request, ctx, key)

    async def limited(request: ChatRequest, ctx: RequestContext, key: Any) -> AsyncIterator[Chunk]:
        limiter = limiter_for(key)
        tokens = estimate_tokens(request)
        try:
            waited = await queue.acquire(lambda: limiter.acquire(tokens), ctx.priority, str(key.id), max_wait)
        except RateLimitError:
            if metrics is not None:
                metrics.ratelimited.labels("key").inc()
            raise
        if metrics is not None:
            metrics.ratelimit_wait.labels(ctx.priority).observe(waited)
        try:
            async for chunk in next(request, ctx):
                yield chunk
        finally:
            if ctx.usage is not None:
                await limiter.correct(ctx.usage.total_tokens - tokens)

    return layer
