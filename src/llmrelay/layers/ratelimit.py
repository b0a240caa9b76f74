"""The ratelimit layer: requests and tokens per minute per virtual key (``ctx.key.rpm`` /
``ctx.key.tpm``) and per caller user (``ratelimit.user_rpm`` / ``user_tpm`` for each distinct
``ctx.user``), waiting in a priority queue with fair sharing, then 429.

A request under both a key and a user limit takes from both or from neither (one atomic check), so
a user limit that refuses never spends the key's capacity. Tokens are estimated before the call
(prompt characters / 4 plus ``max_tokens``) and corrected from ``ctx.usage`` once the answer is
done. With ``redis.url`` set, the buckets live in Redis so a limit holds across every gateway
process and machine (see ``llmrelay.ratelimit.redis_limit``). Per-deployment limits are the
router's job (it skips a deployment without capacity).

A request with no key limit and no user limit passes through at the cost of two attribute reads.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable
from typing import Any

from ..context import RequestContext
from ..errors import RateLimitError
from ..pipeline import Handler
from ..ratelimit.bucket import AllOf, Limit
from ..ratelimit.estimate import estimate_tokens
from ..ratelimit.redis_limit import RedisLimiter
from ..services import Services
from ..shared_state.client import shared_redis
from ..types import ChatRequest, Chunk
from .router import shared_queue

# services.state keys: these outlive a config reload (a reload must not reset anyone's limit).
LIMITS_KEY = "ratelimit.keys"
USERS_KEY = "ratelimit.users"
REDIS_KEY = "ratelimit.redis"
# Users remembered at once; past it, users idle long enough for full buckets are forgotten (a full
# bucket made again later is the same bucket), so callers inventing user names cannot grow memory.
MAX_USERS = 10_000
Conf = tuple[int | None, int | None]


class _Limiters:
    """The limiter of each key and each user, made on first use and remade when its limits change."""

    __slots__ = ("client", "clock", "health", "keys", "metrics", "user_conf", "users")

    def __init__(self, services: Services) -> None:
        self.clock = services.clock
        self.metrics = services.metrics
        # The process's Redis client and circuit (llmrelay.shared_state), shared with budgets and cache.
        shared = shared_redis(services)
        self.client = shared.client if shared is not None else None
        self.health = shared.health if shared is not None else None
        conf = services.settings.ratelimit
        self.user_conf: Conf | None = (conf.user_rpm, conf.user_tpm) if conf.user_rpm or conf.user_tpm else None
        self.keys: dict[str, tuple[Conf, Any]] = services.state.setdefault(LIMITS_KEY, {})
        self.users: OrderedDict[str, tuple[Conf, Any]] = services.state.setdefault(USERS_KEY, OrderedDict())

    def _make(self, scope: str, conf: Conf) -> Any:
        local = Limit.per_minute(conf[0], conf[1], self.clock)
        assert local is not None
        if self.client is None:
            return local
        return RedisLimiter(self.client, scope, conf[0], conf[1], local, self.clock, self.metrics, self.health)

    def for_key(self, key: Any) -> Any:
        conf = (key.rpm, key.tpm)
        entry = self.keys.get(key.id)
        if entry is None or entry[0] != conf:
            entry = self.keys[key.id] = (conf, self._make(f"key:{key.id}", conf))
        return entry[1]

    def for_user(self, user: str) -> Any:
        assert self.user_conf is not None
        entry = self.users.get(user)
        if entry is None or entry[0] != self.user_conf:
            entry = self.users[user] = (self.user_conf, self._make(f"user:{user}", self.user_conf))
            self._forget_idle()
        else:
            self.users.move_to_end(user)
        return entry[1]

    def _forget_idle(self) -> None:
        # A few of the least recently used per new user: amortised, never a scan of them all.
        for _ in range(min(4, len(self.users) - MAX_USERS)):
            user, entry = next(iter(self.users.items()))
            if entry[1].idle:
                del self.users[user]
            else:
                self.users.move_to_end(user)

    def pick(self, key: Any, user: str | None) -> tuple[Any, str]:
        """The limiter for this request and the scope named in metrics."""
        if user is None:
            return self.for_key(key), "key"
        if key is None:
            return self.for_user(user), "user"
        parts = (self.for_key(key), self.for_user(user))
        both = RedisLimiter.all_of(parts) if self.client is not None else AllOf(parts)
        return both, "key+user"


def correct(limiter: Any, ctx: RequestContext, estimated: int) -> Awaitable[None] | None:
    """Give back (or take more of) the tokens estimated before the call, once the real usage is
    known; a local limit does it at once, a shared (Redis) one returns the awaitable round trip."""
    if ctx.usage is None:
        return None
    delta = ctx.usage.total_tokens - estimated
    now = getattr(limiter, "correct_now", None)
    if now is not None:
        now(delta)
        return None
    result: Awaitable[None] = limiter.correct(delta)
    return result


def build(services: Services, next: Handler) -> Handler | None:
    if next is None:
        return None
    queue = shared_queue(services)
    limiters = _Limiters(services)
    per_user = limiters.user_conf is not None
    max_wait = services.settings.ratelimit.max_wait_s
    metrics = services.metrics
    # The wait histogram's child per priority, looked up once (``labels`` takes a lock per call).
    wait_metric = functools.cache(metrics.ratelimit_wait.labels) if metrics is not None else None

    def layer(request: ChatRequest, ctx: RequestContext) -> AsyncIterator[Chunk]:
        key = ctx.key
        if key is not None and not (getattr(key, "rpm", None) or getattr(key, "tpm", None)):
            key = None
        user = ctx.user if per_user else None
        if key is None and user is None:
            return next(request, ctx)  # no limit: no generator level per chunk
        return limited(request, ctx, key, user)

    async def limited(request: ChatRequest, ctx: RequestContext, key: Any, user: str | None) -> AsyncIterator[Chunk]:
        limiter, scope = limiters.pick(key, user)
        tokens = estimate_tokens(request)
        # Nobody waiting and a local limit with room: admitted without entering the queue's
        # coroutines (what the queue would do first anyway). Else the queue decides, and waits.
        try_now = getattr(limiter, "try_acquire", None)
        if try_now is not None and queue.waiting == 0 and try_now(tokens) == 0.0:
            waited = 0.0
        else:
            owner = str(key.id) if key is not None else f"user:{user}"
            try:
                waited = await queue.acquire(lambda: limiter.acquire(tokens), ctx.priority, owner, max_wait)
            except RateLimitError:
                if metrics is not None:
                    metrics.ratelimited.labels(scope).inc()
                raise
        if wait_metric is not None:
            # A metric, not part of the answer: behind an HTTP edge observed after the response.
            child = wait_metric(ctx.priority)
            if not ctx.defer(lambda: child.observe(waited)):
                child.observe(waited)
        try:
            async for chunk in next(request, ctx):
                yield chunk
        finally:
            # The correction shapes later requests, not this answer: behind an HTTP edge it runs
            # once the response is out (ctx.defer); a library call corrects here and now. (Not
            # queued at admission to drop this generator level: a Prelude hands out each chunk
            # through a Python-level __anext__, measured ~1 us slower per 22-chunk stream.)
            if not ctx.defer(lambda: correct(limiter, ctx, tokens)):
                pending = correct(limiter, ctx, tokens)
                if pending is not None:
                    await pending

    return layer
