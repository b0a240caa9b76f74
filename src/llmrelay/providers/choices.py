"""``n > 1`` for any provider: forwarded to an API that has it natively (``Capabilities.choices``),
otherwise fanned out as ``n`` concurrent single-answer calls merged into one answer.

    provider_stream(provider, request)      # instead of provider.stream(request)
    await provider_complete(provider, request)

A merged answer's deltas carry their ``Chunk.choice``; its usage is the sum of the calls' (each
prompt is billed once per call, as the upstream bills it), so the cost is that of the ``n`` calls.
The answers' seeds differ (``seed + i``) so a seeded request still gets ``n`` different samples,
reproducibly.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from dataclasses import replace

from ..types import ChatRequest, ChatResult, Chunk, FinishReason, Usage
from .base import Provider

# Chunks buffered per fanned-out answer before its reader waits for the client (backpressure).
_QUEUE_PER_CHOICE = 8


def fans_out(provider: Provider, request: ChatRequest) -> bool:
    return request.n > 1 and not provider.answers_n_natively()


def single(request: ChatRequest, i: int) -> ChatRequest:
    """The request for the ``i``-th of ``n`` separate answers."""
    seed = request.seed + i if request.seed is not None else None
    return replace(request, n=1, seed=seed)


def provider_complete(provider: Provider, request: ChatRequest) -> Awaitable[ChatResult]:
    # The provider's own coroutine when it answers alone: no coroutine level around it.
    if not fans_out(provider, request):
        return provider.complete(request)
    return _fanned_out(provider, request)


async def _fanned_out(provider: Provider, request: ChatRequest) -> ChatResult:
    results = await asyncio.gather(*(provider.complete(single(request, i)) for i in range(request.n)))
    return merge_results(results)


def merge_results(results: list[ChatResult]) -> ChatResult:
    """Separate answers as one ``n > 1`` answer: the first's fields, every one as a choice."""
    usage = results[0].usage
    for r in results[1:]:
        usage = usage + r.usage
    choices = tuple(replace(r.all_choices()[0], index=i) for i, r in enumerate(results))
    return replace(results[0], usage=usage, choices=choices)


def provider_stream(provider: Provider, request: ChatRequest) -> AsyncIterator[Chunk]:
    if not fans_out(provider, request):
        return provider.stream(request)
    return _merged_stream(provider, request)


async def _merged_stream(provider: Provider, request: ChatRequest) -> AsyncIterator[Chunk]:
    """The ``n`` streams interleaved as they arrive; each answer's finish and usage are held back
    and sent at the end (the last chunk, choice 0's, with the summed usage)."""
    queue: asyncio.Queue[tuple[int, Chunk | Exception | None]] = asyncio.Queue(_QUEUE_PER_CHOICE * request.n)

    async def pump(i: int) -> None:
        try:
            async for chunk in provider.stream(single(request, i)):
                await queue.put((i, chunk))
            await queue.put((i, None))
        except Exception as exc:  # handed to the reader, which raises it (a cancel just ends)
            await queue.put((i, exc))

    tasks = [asyncio.create_task(pump(i)) for i in range(request.n)]
    finishes: dict[int, FinishReason] = {}
    usages: dict[int, Usage] = {}
    try:
        running = request.n
        while running:
            i, item = await queue.get()
            if item is None:
                running -= 1
                continue
            if isinstance(item, Exception):
                raise item
            if item.usage is not None:
                usages[i] = item.usage
            if item.finish_reason:
                finishes[i] = item.finish_reason
            if item.text or item.reasoning or item.reasoning_signature or item.tool_calls or item.id or item.model:
                yield replace(item, choice=i, finish_reason=None, usage=None)
        for i in range(1, request.n):
            yield Chunk(choice=i, finish_reason=finishes.get(i, "stop"))
        total = Usage()
        for u in usages.values():
            total = total + u
        yield Chunk(finish_reason=finishes.get(0, "stop"), usage=total if usages else None)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
