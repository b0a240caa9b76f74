"""Fixtures for the caching tests: a relay over the fake provider with a price for it (so saved cost
is visible), and ways to hold an upstream answer until every identical caller has joined (so dedup
tests do not depend on timing). The real redis-server (``redis_url``) comes from tests/conftest.py."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from llmrelay import Relay
from llmrelay.caching.fanout import Flight
from llmrelay.clock import ManualClock
from llmrelay.context import RequestContext
from llmrelay.simulator import Simulator, serve_in_thread
from llmrelay.streaming import Assembler
from llmrelay.testing import FakeProvider
from llmrelay.types import ChatRequest, ChatResult, Chunk


def relay_config(tmp: Path, cache: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "providers": {"fake": {"kind": "fake"}},
        "models": {"m": [{"provider": "fake", "model": "echo"}], "other": [{"provider": "fake", "model": "echo"}]},
        # $1000 per million tokens: a word costs a tenth of a cent, so savings are visible.
        "pricing": {"overrides": {"fake/echo": {"input_per_mtok": 1000.0, "output_per_mtok": 1000.0}}},
        "storage": {"url": f"sqlite:///{tmp / 'ledger.db'}"},
        "cache": {"enabled": True, **(cache or {})},
        **extra,
    }


def make_relay(tmp: Path, clock: ManualClock | None = None, cache: dict[str, Any] | None = None,
               **extra: Any) -> Relay:
    return Relay(relay_config(tmp, cache, **extra), clock=clock)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


class SimHold:
    """The simulator's injected sleep, held shut until the test opens it: an upstream answer that
    cannot start before every identical caller has arrived, however busy the machine is. A
    ``threading.Event``, because the simulator runs its own event loop on another thread.

        hold = SimHold()
        sim = Simulator(sleep=hold.sleep)      # a model with latency=1 waits here while held
    """

    def __init__(self) -> None:
        self.open = threading.Event()
        self.open.set()

    async def sleep(self, seconds: float) -> None:
        if not self.open.is_set():
            await asyncio.to_thread(self.open.wait)
        await asyncio.sleep(seconds)


class HeldFake:
    """Make ``fake`` wait for ``gate`` before it answers (streamed or not), counting the calls that
    started (``started``) before any of them is let through.

        held = HeldFake(relay.services.providers["fake"], gate := asyncio.Event())
    """

    def __init__(self, fake: FakeProvider, gate: asyncio.Event) -> None:
        self.started = 0
        stream, complete = fake.stream, fake.complete

        async def held_stream(request: ChatRequest) -> AsyncIterator[Chunk]:
            self.started += 1
            await gate.wait()
            async for chunk in stream(request):
                yield chunk

        async def held_complete(request: ChatRequest) -> ChatResult:
            self.started += 1
            await gate.wait()
            return await complete(request)

        fake.stream = held_stream  # type: ignore[method-assign]
        fake.complete = held_complete  # type: ignore[method-assign]

    async def calls(self) -> int:
        return self.started


def joined_callers(*flight_tables: dict[str, Flight]) -> int:
    """How many callers are reading a flight now, over the dedup tables of one or more relays."""
    return sum(len(f.subscribers) for table in flight_tables for f in table.values())


async def until_all_joined(n: int, upstream_calls: Callable[[], Awaitable[int]], *flight_tables: dict[str, Flight],
                           timeout_s: float = 60.0) -> None:
    """Wait until ``n`` callers read flights in ``flight_tables``; fail as soon as a second upstream
    call starts (dedup broken), or after ``timeout_s`` (a generous bound: only a broken dedup reaches
    it, never a slow machine, since the upstream is held meanwhile)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while joined_callers(*flight_tables) < n:
        calls = await upstream_calls()
        assert calls <= 1, f"{calls} upstream calls while {joined_callers(*flight_tables)} of {n} callers joined"
        assert loop.time() < deadline, f"only {joined_callers(*flight_tables)} of {n} callers joined"
        await asyncio.sleep(0.005)


@pytest.fixture(scope="module")
def sim() -> Iterator[tuple[str, SimHold]]:
    hold = SimHold()
    with serve_in_thread(app=Simulator(seed=0, sleep=hold.sleep)) as url:
        yield url, hold


async def sim_chat_calls(client: httpx.AsyncClient, url: str) -> int:
    stats = (await client.get(f"{url}/_sim/stats")).json()
    return int(stats["routes"].get("openai.chat", {}).get("calls", 0))


# latency=1: the simulator's (held) sleep runs before the headers, so the answer waits there.
SIM_MODEL = "gpt-4o-mini+latency=1,chunk_delay=1,words=60,chunks=30"


def sim_config(url: str, tmp_path: Path, **extra: Any) -> dict[str, Any]:
    return {
        "providers": {"sim": {"kind": "openai", "base_url": f"{url}/openai/v1", "api_key": "x"}},
        "models": {"m": [{"provider": "sim", "model": SIM_MODEL}]},
        "pricing": {"overrides": {f"sim/{SIM_MODEL}": {"input_per_mtok": 0.15, "output_per_mtok": 0.60}}},
        "storage": {"url": f"sqlite:///{tmp_path / 'ledger.db'}"},
        **extra,
    }


async def call_relay(relay: Relay, request: ChatRequest, stream: bool) -> tuple[ChatResult, RequestContext]:
    """One call through ``relay``, streamed (and assembled) or not, with its context."""
    ctx = RequestContext()
    if stream:
        asm = Assembler()
        async for c in relay.stream(request, ctx=ctx):
            asm.add(c)
        return asm.result(), ctx
    return await relay.chat(request, ctx=ctx), ctx
