"""Dedup: identical requests in flight share one upstream call and its stream.

Through a Relay (against the simulator over 127.0.0.1, and against the fake provider), and the
layer alone against a hand-driven upstream for the fan-out rules: slow readers, readers that leave,
the first caller leaving, errors reaching everyone.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, cast

import httpx
import pytest

from llmrelay import Relay
from llmrelay.caching.fanout import Flight
from llmrelay.config import Settings
from llmrelay.context import RequestContext
from llmrelay.errors import ProviderUnavailableError
from llmrelay.layers import dedup as dedup_layer
from llmrelay.pipeline import Handler
from llmrelay.services import Services
from llmrelay.streaming import Assembler
from llmrelay.testing import FakeProvider
from llmrelay.types import ChatRequest, ChatResult, Chunk, Message, Usage

from .conftest import (
    HeldFake,
    SimHold,
    call_relay,
    relay_config,
    sim_chat_calls,
    sim_config,
    until_all_joined,
)

N = 1000


async def _storm(relay: Relay, request: ChatRequest) -> list[tuple[ChatResult, RequestContext]]:
    return await asyncio.gather(*(call_relay(relay, request, i % 2 == 0) for i in range(N)))


def _check_storm(results: list[tuple[ChatResult, RequestContext]]) -> None:
    first = results[0][0]
    assert first.text and first.finish_reason == "stop"
    for result, _ in results:
        assert (result.text, result.finish_reason, result.usage) == (first.text, first.finish_reason, first.usage)
    payers = [ctx for _, ctx in results if not ctx.joined and ctx.cache_status != "hit"]
    assert len(payers) == 1
    assert all(ctx.usage == first.usage for _, ctx in results)


async def _held_storm(relay: Relay, request: ChatRequest, calls: Callable[[], Awaitable[int]],
                      release: Callable[[], None]) -> list[tuple[ChatResult, RequestContext]]:
    """N identical concurrent requests whose upstream answer is held until all N have joined: so
    they are concurrent by construction, not by timing."""
    storm = asyncio.ensure_future(_storm(relay, request))
    try:
        await until_all_joined(N, calls, relay.services.state["dedup.flights"])
    finally:
        release()
    return await storm


@pytest.mark.parametrize("cache", [False, True])
async def test_1000_identical_requests_make_one_simulator_call(sim: tuple[str, SimHold], tmp_path: Path,
                                                               cache: bool) -> None:
    url, hold = sim
    request = ChatRequest(model="m", messages=(Message.user("Tell me about caching"),), temperature=0)
    async with httpx.AsyncClient() as client, Relay(sim_config(url, tmp_path, cache={"enabled": cache})) as relay:
        await client.post(f"{url}/_sim/reset")
        hold.open.clear()
        results = await _held_storm(relay, request, lambda: sim_chat_calls(client, url), hold.open.set)
        calls = await sim_chat_calls(client, url)
    _check_storm(results)
    assert len(results[0][0].text.split()) >= 50
    assert calls == 1
    assert all(ctx.cache_status == ("miss" if cache else "off") for _, ctx in results)


async def test_1000_identical_requests_make_one_fake_call(tmp_path: Path) -> None:
    cfg = relay_config(tmp_path, {"enabled": False})
    cfg["providers"]["fake"]["options"] = {"latency_s": 0.002, "chunk_size": 3}
    async with Relay(cfg) as relay:
        fake = relay.services.providers["fake"]
        assert isinstance(fake, FakeProvider)
        held = HeldFake(fake, gate := asyncio.Event())
        request = ChatRequest(model="m", messages=(Message.user("one question for everyone"),), temperature=0)
        results = await _held_storm(relay, request, held.calls, gate.set)
        assert len(fake.calls) == 1
    _check_storm(results)
    payer = next(ctx for _, ctx in results if not ctx.joined)
    joined = [ctx for _, ctx in results if ctx.joined]
    assert payer.cost_usd > 0 and len(joined) == N - 1
    assert all(c.cost_usd == 0 and c.cost_saved_usd == pytest.approx(payer.cost_usd) for c in joined)
    assert all(c.status == "joined" and c.provider == "fake" for c in joined)
    assert relay.services.metrics.dedup_joined._value.get() == N - 1


async def test_sampling_requests_do_not_join_unless_configured(tmp_path: Path) -> None:
    for include, expected in ((False, 5), (True, 1)):
        cfg = relay_config(tmp_path, {"enabled": False}, dedup={"include_nondeterministic": include})
        cfg["providers"]["fake"]["options"] = {"latency_s": 0.01}
        async with Relay(cfg) as relay:
            request = ChatRequest(model="m", messages=(Message.user("a poem"),), temperature=0.9)
            await asyncio.gather(*(call_relay(relay, request, False) for _ in range(5)))
            assert len(relay.services.providers["fake"].calls) == expected  # type: ignore[attr-defined]


# ---- the layer alone ---------------------------------------------------------------------------


class Upstream:
    """A hand-driven upstream: ``n`` chunks of text, a pause (``asyncio.sleep(0)``) between them."""

    def __init__(self, n: int = 40, fail_after: int | None = None, gate: asyncio.Event | None = None) -> None:
        self.n, self.fail_after, self.gate = n, fail_after, gate
        self.calls = self.produced = 0
        self.completed = self.cancelled = False

    @property
    def text(self) -> str:
        return "".join(f"w{i} " for i in range(self.n))

    async def __call__(self, request: ChatRequest, ctx: RequestContext) -> AsyncIterator[Chunk]:
        self.calls += 1
        ctx.provider, ctx.upstream_model = "up", "model-x"
        try:
            for i in range(self.n):
                if self.gate is not None and i == 1:
                    await self.gate.wait()
                if self.fail_after is not None and i == self.fail_after:
                    raise ProviderUnavailableError("the upstream went away", provider="up")
                await asyncio.sleep(0)
                self.produced = i + 1
                yield Chunk(text=f"w{i} ", id="r1" if i == 0 else None)
            ctx.usage, ctx.cost_usd = Usage(10, self.n), 0.25
            yield Chunk(finish_reason="stop", usage=ctx.usage)
            self.completed = True
        except asyncio.CancelledError:
            self.cancelled = True
            raise


# The layer's streams are async generators (closable), though Handler only promises iteration.
GenHandler = Callable[[ChatRequest, RequestContext], AsyncGenerator[Chunk, None]]


def _layer(upstream: Handler, buffer_chunks: int = 4) -> tuple[GenHandler, dict[str, Flight]]:
    services = Services(settings=Settings.from_dict({"dedup": {"buffer_chunks": buffer_chunks}}))
    handler = dedup_layer.build(services, upstream)
    assert handler is not None
    return cast(GenHandler, handler), services.state["dedup.flights"]


REQ = ChatRequest(model="m", messages=(Message.user("q"),), temperature=0, stream=True)


async def _read_all(agen: AsyncIterator[Chunk]) -> ChatResult:
    asm = Assembler()
    async for c in agen:
        asm.add(c)
    return asm.result()


async def test_a_slow_reader_neither_stalls_others_nor_buffers_without_bound() -> None:
    up = Upstream(n=60)
    handler, flights = _layer(up, buffer_chunks=4)
    slow_ctx = RequestContext()
    fast_agen, slow_agen = handler(REQ, RequestContext()), handler(REQ, slow_ctx)
    first_fast = await fast_agen.__anext__()            # the leader: starts the flight
    first_slow = await slow_agen.__anext__()            # joins, then stops reading
    flight = next(iter(flights.values()))
    slow_sub = flight.subscribers[1]
    asm = Assembler()
    asm.add(first_fast)
    async for c in fast_agen:
        asm.add(c)
        assert len(slow_sub.buffer) <= 4
    assert asm.result().text == up.text and up.completed and up.calls == 1
    assert slow_sub.detached_at is not None
    # The slow reader still gets the whole answer: its buffer, then the rest in one chunk.
    rest: list[Chunk] = [c async for c in slow_agen]
    slow = Assembler()
    for c in (first_slow, *rest):
        slow.add(c)
    assert slow.result().text == up.text and slow.finish_reason == "stop"
    assert len(rest) <= 4 + 1
    assert slow_ctx.joined and slow_ctx.cost_saved_usd == 0.25 and slow_ctx.cost_usd == 0


async def _lagging(agen: AsyncIterator[Chunk], up: Upstream, reads: int, asm: Assembler) -> int:
    """Read ``reads`` chunks slowly (the loop free to run ahead); how far the upstream got ahead."""
    window = 0
    for read in range(reads):
        asm.add(await agen.__anext__())
        for _ in range(10):
            await asyncio.sleep(0)
        window = max(window, up.produced - (read + 1))
    return window


async def test_a_lone_slow_reader_holds_the_upstream_to_its_pace() -> None:
    up = Upstream(n=300)
    handler, flights = _layer(up, buffer_chunks=4)
    agen = handler(REQ, RequestContext())
    asm = Assembler()
    window = await _lagging(agen, up, 100, asm)
    sub = next(iter(flights.values())).subscribers[0]
    assert window <= 4 + 1, window  # its buffer, plus the chunk being handed over
    assert sub.detached_at is None and up.produced < 110
    async for c in agen:
        asm.add(c)
    assert asm.result().text == up.text and up.completed and up.calls == 1


async def test_a_slow_reader_is_detached_only_while_another_keeps_up() -> None:
    up = Upstream(n=300)
    handler, flights = _layer(up, buffer_chunks=4)
    fast, slow = handler(REQ, RequestContext()), handler(REQ, RequestContext())
    fast_asm, slow_asm = Assembler(), Assembler()
    fast_asm.add(await fast.__anext__())
    slow_asm.add(await slow.__anext__())
    flight = next(iter(flights.values()))
    slow_sub = flight.subscribers[1]
    for _ in range(100):                                 # the fast reader runs ahead alone
        fast_asm.add(await fast.__anext__())
    assert slow_sub.detached_at is not None and len(slow_sub.buffer) <= 4
    assert up.produced >= 100
    await fast.aclose()                                  # nobody keeps up any more
    ahead = up.produced
    # The slow reader drains its buffer, is caught up in one chunk, and from then on holds the
    # upstream to its own pace again.
    window = await _lagging(slow, up, 30, slow_asm)
    assert slow_sub.detached_at is None
    assert up.produced - ahead <= 30 + 4 + 1, (ahead, up.produced, window)
    async for c in slow:
        slow_asm.add(c)
    assert slow_asm.result().text == up.text and up.calls == 1 and up.completed


async def test_a_detached_reader_catches_up_before_the_end() -> None:
    up = Upstream(n=200)
    handler, flights = _layer(up, buffer_chunks=4)
    fast, slow = handler(REQ, RequestContext()), handler(REQ, RequestContext())
    await fast.__anext__()
    await slow.__anext__()
    for _ in range(50):
        await fast.__anext__()
    flight = next(iter(flights.values()))
    assert flight.subscribers[1].detached_at is not None
    got = [await slow.__anext__() for _ in range(5)]     # its buffer, then everything it missed
    assert not up.completed
    assert len("".join(c.text for c in got).split()) >= 50
    assert flight.subscribers[1].detached_at is None
    await fast.aclose()
    await slow.aclose()


async def test_a_reader_that_leaves_does_not_disturb_the_others() -> None:
    up = Upstream(n=30)
    handler, flights = _layer(up, buffer_chunks=64)
    agens = [handler(REQ, RequestContext()) for _ in range(3)]
    firsts = [await a.__anext__() for a in agens]
    await agens[1].__anext__()
    await agens[1].aclose()                              # a joined caller hangs up
    flight = next(iter(flights.values()))
    assert len(flight.subscribers) == 2
    for first, agen in ((firsts[0], agens[0]), (firsts[2], agens[2])):
        asm = Assembler()
        asm.add(first)
        async for c in agen:
            asm.add(c)
        assert asm.result().text == up.text
    assert up.calls == 1 and up.completed and not flights


async def test_the_upstream_call_goes_on_when_the_first_caller_leaves() -> None:
    gate = asyncio.Event()
    up = Upstream(n=10, gate=gate)
    handler, _ = _layer(up)
    leader_ctx, joiner_ctx = RequestContext(), RequestContext()
    leader, joiner = handler(REQ, leader_ctx), handler(REQ, joiner_ctx)
    await leader.__anext__()
    first = await joiner.__anext__()
    await leader.aclose()
    gate.set()
    asm = Assembler()
    asm.add(first)
    async for c in joiner:
        asm.add(c)
    assert asm.result().text == up.text and up.completed and not up.cancelled
    # The caller who stayed took over the bill; the one who left paid nothing.
    assert (joiner_ctx.joined, joiner_ctx.cost_usd) == (False, 0.25)
    assert leader_ctx.cost_usd == 0


async def test_the_upstream_call_is_cancelled_when_everyone_leaves() -> None:
    gate = asyncio.Event()
    up = Upstream(n=10, gate=gate)
    handler, flights = _layer(up)
    agens = [handler(REQ, RequestContext()) for _ in range(2)]
    for a in agens:
        await a.__anext__()
    for a in agens:
        await a.aclose()
    for _ in range(5):
        await asyncio.sleep(0)
    assert up.cancelled and not up.completed and not flights
    # The next identical request starts afresh.
    gate.set()
    result = await _read_all(handler(REQ, RequestContext()))
    assert result.text == up.text and up.calls == 2


async def test_an_upstream_error_reaches_every_caller() -> None:
    up = Upstream(n=10, fail_after=5)
    handler, flights = _layer(up, buffer_chunks=2)
    ctxs = [RequestContext() for _ in range(4)]
    agens = [handler(REQ, c) for c in ctxs]
    firsts = [await a.__anext__() for a in agens]

    async def drain(first: Chunk, agen: AsyncIterator[Chunk]) -> tuple[str, BaseException | None]:
        text = first.text
        try:
            async for c in agen:
                text += c.text
        except ProviderUnavailableError as exc:
            return text, exc
        return text, None

    outcomes = await asyncio.gather(*(drain(f, a) for f, a in zip(firsts, agens, strict=True)))
    assert up.calls == 1 and not flights
    for text, exc in outcomes:
        assert isinstance(exc, ProviderUnavailableError)
        assert text == "".join(f"w{i} " for i in range(5))


async def test_a_late_joiner_is_caught_up() -> None:
    up = Upstream(n=20)
    handler, _ = _layer(up, buffer_chunks=64)
    leader = handler(REQ, RequestContext())
    got = [await leader.__anext__() for _ in range(8)]
    late_ctx = RequestContext()
    late = await _read_all_concurrently(handler(REQ, late_ctx), leader, got)
    assert late.text == up.text and late.id == "r1" and up.calls == 1
    assert late_ctx.joined and late_ctx.provider == "up"


async def _read_all_concurrently(late: AsyncIterator[Chunk], leader: AsyncIterator[Chunk],
                                 got: list[Chunk]) -> ChatResult:
    task = asyncio.ensure_future(_read_all(late))
    rest = [c async for c in leader]
    asm = Assembler()
    for c in (*got, *rest):
        asm.add(c)
    assert asm.result().text == "".join(f"w{i} " for i in range(20))
    return await task


async def test_tool_call_fragments_survive_detaching() -> None:
    async def upstream(request: ChatRequest, ctx: RequestContext) -> AsyncIterator[Chunk]:
        from llmrelay.types import ToolCallDelta

        yield Chunk(id="r", tool_calls=(ToolCallDelta(0, id="c1", name="f", arguments='{"a"'),))
        for i in range(20):
            await asyncio.sleep(0)
            yield Chunk(tool_calls=(ToolCallDelta(0, arguments=f",{i}" if i else ": [0"),))
        yield Chunk(tool_calls=(ToolCallDelta(0, arguments="]}"),), finish_reason="tool_calls")

    handler, _ = _layer(upstream, buffer_chunks=2)
    fast, slow = handler(REQ, RequestContext()), handler(REQ, RequestContext())
    f0, s0 = await fast.__anext__(), await slow.__anext__()
    fast_rest: list[Any] = [c async for c in fast]
    slow_rest: list[Any] = [c async for c in slow]
    results = []
    for chunks in ((f0, *fast_rest), (s0, *slow_rest)):
        asm = Assembler()
        for c in chunks:
            asm.add(c)
        results.append(asm.result())
    assert results[0].tool_calls == results[1].tool_calls
    assert results[0].tool_calls[0].arguments == '{"a": [0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19]}'


async def test_a_thinking_signature_after_its_reasoning_reaches_late_and_detached_readers() -> None:
    # As Anthropic streams it: the reasoning, then its signature alone, then the text.
    async def upstream(request: ChatRequest, ctx: RequestContext) -> AsyncIterator[Chunk]:
        for i in range(6):
            await asyncio.sleep(0)
            yield Chunk(reasoning=f"r{i} ", id="r" if i == 0 else None)
        yield Chunk(reasoning_signature="SIG")
        for i in range(6):
            await asyncio.sleep(0)
            yield Chunk(text=f"t{i} ")
        yield Chunk(finish_reason="stop")

    handler, flights = _layer(upstream, buffer_chunks=2)
    fast, slow = handler(REQ, RequestContext()), handler(REQ, RequestContext())
    fast_chunks: list[Chunk] = []
    slow_chunks: list[Chunk] = []
    for _ in range(4):                                   # both read r0..r3; r4, r5 fill the slow buffer
        fast_chunks.append(await fast.__anext__())
        slow_chunks.append(await slow.__anext__())
    while not fast_chunks[-1].text:                      # the slow reader is detached before "SIG"
        fast_chunks.append(await fast.__anext__())
    assert next(iter(flights.values())).subscribers[1].detached_at is not None
    late = asyncio.ensure_future(_read_all(handler(REQ, RequestContext())))
    fast_chunks += [c async for c in fast]
    slow_chunks += [c async for c in slow]
    for chunks in (fast_chunks, slow_chunks):
        asm = Assembler()
        for c in chunks:
            asm.add(c)
        assert asm.result().reasoning_signature == "SIG" and asm.result().text == "t0 t1 t2 t3 t4 t5 "
    late_result = await late
    assert (late_result.reasoning_signature, late_result.reasoning) == ("SIG", "r0 r1 r2 r3 r4 r5 ")
