"""A layer whose only work comes before the inner stream starts, without a generator level per chunk.

An ``async def`` generator that awaits a check and then re-yields every chunk of the inner stream
costs a frame resume, an ``asend`` object and an ``async for`` step per chunk, for nothing: a
twenty-chunk stream pays it twenty times in every such layer. :class:`Prelude` runs the check on the
first ``__anext__`` and from then on hands out the inner stream's own ``__anext__`` awaitables.

    async def check(request, ctx):
        if not allowed(ctx):
            raise PermissionDeniedError("...")

    def layer(request, ctx):
        return Prelude(check, request, ctx, next)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from ..context import RequestContext
from ..types import ChatRequest, Chunk

Check = Callable[[ChatRequest, RequestContext], Awaitable[Any]]
Next = Callable[[ChatRequest, RequestContext], AsyncIterator[Chunk]]


class Prelude:
    """``await check(request, ctx)`` then the chunks of ``next(request, ctx)``, closable like a generator."""

    __slots__ = ("_check", "_ctx", "_done", "_inner", "_next", "_request")

    def __init__(self, check: Check, request: ChatRequest, ctx: RequestContext, next: Next) -> None:
        self._check, self._request, self._ctx, self._next = check, request, ctx, next
        self._inner: AsyncIterator[Chunk] | None = None
        self._done = False

    def __aiter__(self) -> Prelude:
        return self

    def __anext__(self) -> Awaitable[Chunk]:
        inner = self._inner
        if inner is not None:
            return inner.__anext__()
        return self._start()

    async def _start(self) -> Chunk:
        if self._done:  # the check failed or the stream was closed: like a finished generator
            raise StopAsyncIteration
        self._done = True
        await self._check(self._request, self._ctx)
        inner = self._inner = self._next(self._request, self._ctx)
        return await inner.__anext__()

    async def aclose(self) -> None:
        self._done = True
        inner, self._inner = self._inner, None
        aclose = getattr(inner, "aclose", None)
        if aclose is not None:
            await aclose()
