"""The response cache as one object: keys, policy, backend, TTLs, metrics and invalidation.

Built once per cache configuration and kept in ``services.state`` so a reload that leaves the cache
settings alone keeps its entries. The cache layer asks it three things: :meth:`ResponseCache.lookup`,
:meth:`ResponseCache.store`, and whether a request may be cached at all (:meth:`policy`).

    cache = response_cache(services)
    await cache.clear(group="fast")            # what DELETE /admin/cache?model=fast does
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal

from ..context import RequestContext
from ..types import ChatRequest, ChatResult
from .backends import CacheBackend, MemoryBackend, open_backend
from .decoded import Decoded, DecodedMemo
from .entry import CachedAnswer, encode, storable
from .key_memo import KeyMemo

if TYPE_CHECKING:
    from ..services import Services
    from .semantic import SemanticIndex

log = logging.getLogger("llmrelay.cache")

Decision = Literal["off", "lookup", "refresh"]
_SLOT = "cache.service"


def scope_of(scope: str, ctx: RequestContext) -> str:
    """What the cache is partitioned by: nothing, the caller's key, or their team."""
    if scope == "key":
        return "key:" + (ctx.key_id or "")
    if scope == "team":
        return "team:" + (ctx.team or "")
    return ""


class ResponseCache:
    def __init__(self, services: Services, backend: CacheBackend, semantic: SemanticIndex | None = None) -> None:
        self.cfg = services.settings.cache
        self.clock = services.clock
        self.metrics = services.metrics
        self.backend = backend
        self.semantic = semantic
        self.decoded = DecodedMemo()
        self.keys = KeyMemo()
        self._bound: tuple[Any, dict[str, Any]] | None = None
        # Background writes (non-inline backends) held here so they are not garbage-collected.
        self._pending: set[asyncio.Task[None]] = set()
        self._warned = False

    # ---- policy -------------------------------------------------------------------------------------

    def policy(self, request: ChatRequest, ctx: RequestContext) -> Decision:
        if ctx.cache_mode == "no-store" or request.n != 1:
            return "off"
        if not (request.deterministic or self.cfg.cache_nondeterministic):
            return "off"
        return "refresh" if ctx.cache_mode == "refresh" else "lookup"

    def key(self, request: ChatRequest, ctx: RequestContext) -> str:
        return self.keys.key(request, ctx.protocol, scope_of(self.cfg.scope, ctx))

    def ttl(self, group: str) -> float:
        return self.cfg.ttl_by_model.get(group, self.cfg.ttl_s)

    # ---- lookup and store ---------------------------------------------------------------------------

    async def lookup(self, key: str) -> CachedAnswer | None:
        hot = await self.lookup_decoded(key)
        return None if hot is None else hot.answer

    async def lookup_decoded(self, key: str) -> Decoded | None:
        """The entry with its replay chunks, decoded once per stored value (:mod:`.decoded`)."""
        try:
            raw = await self.backend.get(key)
        except Exception as exc:  # a cache that cannot be reached is a miss, not a failed request
            self._backend_failed(exc)
            return None
        return None if raw is None else self.decoded.get(key, raw)

    async def lookup_similar(self, request: ChatRequest, ctx: RequestContext) -> tuple[str, CachedAnswer] | None:
        found = await self.lookup_similar_decoded(request, ctx)
        return None if found is None else (found[0], found[1].answer)

    async def lookup_similar_decoded(self, request: ChatRequest, ctx: RequestContext) -> tuple[str, Decoded] | None:
        if self.semantic is None:
            return None
        key = await self.semantic.find(request, scope_of(self.cfg.scope, ctx))
        if key is None:
            return None
        hot = await self.lookup_decoded(key)
        return None if hot is None else (key, hot)

    async def store(self, key: str, request: ChatRequest, ctx: RequestContext, result: ChatResult,
                    wait: bool = False) -> None:
        """Keep a complete answer: inline for the memory backend (or with ``wait``: someone waits
        for the entry), in the background otherwise."""
        if not storable(result.finish_reason):
            return
        answer = CachedAnswer(result, ctx.provider, ctx.provider_kind, ctx.upstream_model,
                              ctx.cost_usd + ctx.cost_saved_usd, self.clock.time())
        write = self._write(key, request, ctx, encode(answer))
        if wait or (self.backend.inline and self.semantic is None):
            await write
            return
        task = asyncio.ensure_future(write)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _write(self, key: str, request: ChatRequest, ctx: RequestContext, value: bytes) -> None:
        try:
            await self.backend.set(key, request.model, value, self.ttl(request.model))
            if self.semantic is not None:
                await self.semantic.add(request, scope_of(self.cfg.scope, ctx), key)
        except Exception as exc:
            self._backend_failed(exc)
            return
        if self.metrics is not None and isinstance(self.backend, MemoryBackend):
            self.metrics.cache_bytes.set(self.backend.bytes)

    async def drain(self) -> None:
        """Wait for background writes (tests, and a graceful shutdown)."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    # ---- invalidation -------------------------------------------------------------------------------

    async def clear(self, group: str | None = None, key: str | None = None) -> int:
        """Remove one entry (``key``), a model group's entries, or everything; return the count."""
        if key is not None:
            removed = int(await self.backend.delete(key))
        else:
            removed = await self.backend.clear(group)
        # Only a matching stored value is ever served from the memo; this just frees its memory.
        self.decoded.clear()
        if self.semantic is not None:
            self.semantic.forget(group=group, key=key)
        if self.metrics is not None and isinstance(self.backend, MemoryBackend):
            self.metrics.cache_bytes.set(self.backend.bytes)
        return removed

    def record(self, result: str, saved_usd: float = 0.0, source: str = "cache") -> None:
        metrics = self.metrics
        if metrics is None:
            return
        # The metric children bound once per metrics object (labels() takes a lock per call).
        bound = self._bound
        if bound is None or bound[0] is not metrics:
            bound = self._bound = (metrics, {})
        children = bound[1]
        counted = children.get(result)
        if counted is None:
            counted = children[result] = metrics.cache.labels(result=result)
        counted.inc()
        if saved_usd:
            saved = children.get("saved:" + source)
            if saved is None:
                saved = children["saved:" + source] = metrics.cache_saved.labels(source=source)
            saved.inc(saved_usd)

    def _backend_failed(self, exc: Exception) -> None:
        # Once at warning level, then quietly: a down Redis must not flood the log on every request.
        (log.debug if self._warned else log.warning)("cache backend failed (%s): serving without it", exc)
        self._warned = True

    async def aclose(self) -> None:
        await self.drain()
        await self.backend.aclose()


def response_cache(services: Services) -> ResponseCache:
    """The cache for these settings, carried over from the previous generation when unchanged."""
    cfg = services.settings.cache
    signature: Any = (cfg.model_dump_json(), services.settings.redis.url, services.settings.storage.url)
    slot = _SLOT
    held = services.state.get(slot)
    if held is not None and held[0] == signature:
        cache: ResponseCache = held[1]
        cache.metrics = services.metrics
        services.on_close.append(_closer(services, cache))
        return cache
    metrics = services.metrics
    on_evict = metrics.cache_evictions.inc if metrics is not None else None
    backend = open_backend(services.settings, services.clock, on_evict)
    # A Redis cache uses the process's Redis client and circuit: a dead Redis is a fast miss.
    from ..shared_state.cache import guard_cache_backend

    backend = guard_cache_backend(services, backend)
    semantic = None
    if cfg.semantic.enabled:
        from .semantic import SemanticIndex

        semantic = SemanticIndex.from_config(cfg.semantic, max_entries=cfg.max_entries)
    cache = ResponseCache(services, backend, semantic)
    services.state[slot] = (signature, cache)
    services.on_close.append(_closer(services, cache))
    return cache


def _closer(services: Services, cache: ResponseCache) -> Callable[[], Awaitable[None]]:
    async def close() -> None:
        # Pending writes always finish; the backend closes only once a newer generation has
        # replaced this cache (a generation that handed it over must leave it open).
        await cache.drain()
        current = services.state.get(_SLOT)
        if current is None or current[1] is not cache:
            await cache.backend.aclose()

    return close
