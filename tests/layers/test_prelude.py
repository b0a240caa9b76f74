"""Prelude: a layer's check before the inner stream, with no generator level per chunk."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from llmrelay.context import RequestContext
from llmrelay.errors import AuthenticationError
from llmrelay.layers._prelude import Prelude
from llmrelay.types import ChatRequest, Chunk, Message

REQUEST = ChatRequest(model="m", messages=(Message.user("hi"),))


class Inner:
    """The inner stream: records whether it was started and closed."""

    def __init__(self, texts: list[str]) -> None:
        self.texts, self.started, self.closed = texts, False, False

    async def stream(self, request: ChatRequest, ctx: RequestContext) -> AsyncIterator[Chunk]:
        self.started = True
        try:
            for t in self.texts:
                yield Chunk(text=t)
        finally:
            self.closed = True


async def test_check_runs_once_before_the_inner_stream_and_chunks_pass_unchanged() -> None:
    seen: list[str] = []
    inner = Inner(["a", "b", "c"])

    async def check(request: ChatRequest, ctx: RequestContext) -> None:
        seen.append("check")
        assert not inner.started
        ctx.user = "checked"

    ctx = RequestContext()
    out = [c.text async for c in Prelude(check, REQUEST, ctx, inner.stream)]
    assert out == ["a", "b", "c"] and seen == ["check"] and ctx.user == "checked"


async def test_a_failed_check_never_starts_the_inner_stream_and_ends_it() -> None:
    inner = Inner(["a"])

    async def refuse(request: ChatRequest, ctx: RequestContext) -> None:
        raise AuthenticationError("no")

    stream = Prelude(refuse, REQUEST, RequestContext(), inner.stream)
    with pytest.raises(AuthenticationError):
        await stream.__anext__()
    with pytest.raises(StopAsyncIteration):  # like a generator that raised: finished
        await stream.__anext__()
    assert not inner.started


async def test_aclose_mid_stream_closes_the_inner_stream() -> None:
    inner = Inner(["a", "b", "c"])

    async def ok(request: ChatRequest, ctx: RequestContext) -> None:
        return None

    stream = Prelude(ok, REQUEST, RequestContext(), inner.stream)
    assert (await stream.__anext__()).text == "a"
    await stream.aclose()
    assert inner.closed
    with pytest.raises(StopAsyncIteration):
        await stream.__anext__()
