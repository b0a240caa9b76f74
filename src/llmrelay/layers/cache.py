"""The cache layer: answer from the response cache, or store the answer as it passes.

A hit is replayed as a few chunks and costs the caller nothing upstream: ``ctx.cost_usd = 0``,
``ctx.cost_saved_usd`` = what the original call cost, ``ctx.usage`` = the original usage (tokens
served), ``ctx.cache_status = "hit"``. The budget layer above settles to ``ctx.cost_usd``, so a hit
is never charged. A miss streams through untouched while an assembler folds it; the answer is
stored when the stream ends, only if it is complete (finish reason stop, tool_calls or length),
never after an error, a refusal or a caller that went away. Work the layers above deferred until a
request is known to go upstream (the budget reservation, :mod:`._upstream_gate`) is run on a miss,
before the next layer is called, and never on a hit. ``x-llmrelay-cache: no-store`` skips
the cache (status ``off``); ``refresh`` skips the lookup and stores the fresh answer.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing

from ..caching.decoded import HIT_NOTE
from ..caching.entry import CachedAnswer
from ..caching.fleet import STORED_NOTE
from ..caching.service import ResponseCache, response_cache
from ..context import RequestContext
from ..pipeline import Handler
from ..services import Services
from ..streaming import Assembler
from ..types import ChatRequest, Chunk
from ._upstream_gate import open_gate

# Where the key is left for the dedup layer (the same canonical key, computed once).
KEY_NOTE = "cache.key"


def closable(stream: AsyncIterator[Chunk]) -> AsyncGenerator[Chunk, None]:
    # Layers are async generators (they have aclose); the Handler type only promises iteration.
    return stream  # type: ignore[return-value]


def serve_hit(ctx: RequestContext, answer: CachedAnswer) -> None:
    """Account a hit on the caller's context: nothing spent, the original cost saved."""
    ctx.cache_status = "hit"
    ctx.provider, ctx.provider_kind, ctx.upstream_model = answer.provider, answer.provider_kind, answer.upstream_model
    ctx.usage = answer.result.usage
    ctx.cost_usd = 0.0
    ctx.cost_saved_usd = answer.cost_usd


def build(services: Services, next: Handler) -> Handler | None:
    if not services.settings.cache.enabled:
        return None
    cache = response_cache(services)

    async def cached(request: ChatRequest, ctx: RequestContext) -> AsyncIterator[Chunk]:
        decision = cache.policy(request, ctx)
        if decision == "off":
            await open_gate(ctx)
            ctx.cache_status = "off"
            async with aclosing(closable(next(request, ctx))) as stream:
                async for chunk in stream:
                    yield chunk
            return
        key = cache.key(request, ctx)
        ctx.notes[KEY_NOTE] = key
        if decision == "lookup":
            hot = await cache.lookup_decoded(key)
            if hot is None and cache.semantic is not None:
                found = await cache.lookup_similar_decoded(request, ctx)
                hot = found[1] if found else None
            if hot is not None:
                answer = hot.answer
                serve_hit(ctx, answer)
                ctx.notes[HIT_NOTE] = hot
                cache.record("hit", answer.cost_usd)
                # The same immutable chunks on every hit of this entry (caching.decoded).
                for chunk in hot.chunks(request.stream):
                    yield chunk
                return
        # Goes upstream: what the layers above deferred until now (the budget reservation) is taken.
        await open_gate(ctx)
        ctx.cache_status = "miss"
        cache.record("miss")
        async with aclosing(closable(_store_as_it_passes(cache, key, request, ctx, next))) as stream:
            async for chunk in stream:
                yield chunk

    return cached


async def _store_as_it_passes(cache: ResponseCache, key: str, request: ChatRequest, ctx: RequestContext,
                              next: Handler) -> AsyncIterator[Chunk]:
    asm = Assembler()
    async with aclosing(closable(next(request, ctx))) as stream:
        async for chunk in stream:
            asm.add(chunk)
            yield chunk
    # A joined request's leader stores the answer (the dedup layer may have already, for other
    # instances waiting on it); a second write would only repeat it.
    if asm.finish_reason is not None and not ctx.joined and ctx.error is None and not ctx.notes.get(STORED_NOTE):
        await cache.store(key, request, ctx, asm.result(provider=ctx.provider))
