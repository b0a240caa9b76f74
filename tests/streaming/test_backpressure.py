"""Backpressure through the whole pipeline: a slow reader holds the upstream read near its position."""

from __future__ import annotations

import asyncio
import tracemalloc
from collections.abc import AsyncIterator

from llmrelay import Relay
from llmrelay.context import RequestContext
from llmrelay.testing import FakeProvider
from llmrelay.types import ChatRequest, Chunk, Message, Usage

TOTAL = 10_000


class Firehose(FakeProvider):
    """An upstream with 10,000 chunks that counts how far it has been read."""

    produced = 0
    closed = False

    async def stream(self, request: ChatRequest) -> AsyncIterator[Chunk]:
        try:
            for i in range(TOTAL):
                self.produced = i + 1
                yield Chunk(text=f"token{i} " * 8, id="up" if i == 0 else None)
                await asyncio.sleep(0)
            yield Chunk(finish_reason="stop", usage=Usage(10, TOTAL))
        finally:
            self.closed = True


async def _slow_read(temperature: float | None) -> tuple[int, list[int], Firehose, RequestContext]:
    relay = Relay({"providers": {"f": {"kind": "fake"}}, "models": {"m": [{"provider": "f", "model": "x"}]},
                   "dedup": {"enabled": True}, "storage": {"url": "sqlite:///:memory:"}})
    fire = Firehose()
    relay.services.providers["f"] = fire
    req = ChatRequest(model="m", messages=(Message.user("hi"),), stream=True, temperature=temperature)
    ctx = RequestContext()
    async with relay:
        agen = relay.handle(req, ctx)
        tracemalloc.start()
        window, sizes = 0, []
        for read in range(1, 201):
            await anext(agen)
            # The client is slow: the event loop is free to run ahead if anything buffered.
            for _ in range(20):
                await asyncio.sleep(0)
            window = max(window, fire.produced - read)
            if read % 50 == 0:
                sizes.append(tracemalloc.get_traced_memory()[0])
        tracemalloc.stop()
        await agen.aclose()
    return window, sizes, fire, ctx


async def test_slow_reader_keeps_upstream_within_a_small_window() -> None:
    window, sizes, fire, ctx = await _slow_read(temperature=None)
    print(f"\nupstream ahead of the reader by at most {window} chunks; traced memory {[s // 1024 for s in sizes]} KiB")
    assert window <= 8, window  # a few chunks of look-behind (safety filter), never a growing buffer
    assert sizes[-1] - sizes[0] < 256 * 1024
    assert fire.closed and fire.produced < TOTAL
    assert ctx.status == "cancelled" and ctx.usage is not None


async def test_dedup_fanout_keeps_upstream_within_its_buffer() -> None:
    window, sizes, fire, _ = await _slow_read(temperature=0)  # deterministic: goes through the dedup flight
    print(f"\nthrough dedup: upstream ahead by at most {window} chunks; traced memory {[s // 1024 for s in sizes]} KiB")
    assert window <= 256 + 8, window  # dedup.buffer_chunks, plus the safety filter's few chunks
    assert sizes[-1] - sizes[0] < 256 * 1024
    assert fire.closed and fire.produced < TOTAL
