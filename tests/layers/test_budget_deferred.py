"""The budget layer defers its worst-case reservation until a request is known to go upstream.

A cache hit costs nothing, so it must not reserve and release a worst case; it still passes the
read-only check that refuses a used-up budget. A miss reserves before the upstream is called and
settles after, however it ends. The counters are the real in-memory store, wrapped to record the
order of operations; the upstream is the fake provider, wrapped to note when it is called.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from llmrelay import Message, Relay
from llmrelay.context import RequestContext
from llmrelay.cost.budgets import BudgetManager
from llmrelay.errors import AuthenticationError, BudgetExceededError
from llmrelay.testing import FakeProvider
from llmrelay.types import ChatRequest

LIMIT = 100.0


class Recording:
    """The budget manager's counter store, with every call noted in ``log``."""

    def __init__(self, inner: Any, log: list[str]) -> None:
        self.inner, self.log = inner, log

    async def reserve(self, keys: Sequence[str], limits: Sequence[int], amount: int, ttls: Sequence[int],
                      brake: str) -> int:
        self.log.append("reserve")
        return int(await self.inner.reserve(keys, limits, amount, ttls, brake))

    async def adjust(self, keys: Sequence[str], delta: int, ttls: Sequence[int]) -> list[int]:
        self.log.append("adjust")
        return list(await self.inner.adjust(keys, delta, ttls))

    async def get(self, keys: Sequence[str]) -> list[int]:
        self.log.append("get")
        return list(await self.inner.get(keys))

    def peek(self, keys: Sequence[str]) -> list[int]:
        # The in-process store's read (the check's path for it); a read all the same.
        self.log.append("get")
        return list(self.inner.peek(keys))

    async def flag(self, key: str, ttl: int) -> bool:
        return bool(await self.inner.flag(key, ttl))

    async def clear(self, key: str) -> None:
        await self.inner.clear(key)

    async def aclose(self) -> None:
        await self.inner.aclose()


def config(tmp: Path, cache: bool = True) -> dict[str, Any]:
    return {
        "providers": {"fake": {"kind": "fake"}},
        "models": {"m": [{"provider": "fake", "model": "echo"}]},
        "pricing": {"overrides": {"fake/echo": {"input_per_mtok": 1000.0, "output_per_mtok": 1000.0,
                                                  "max_output_tokens": 50}}},
        "storage": {"url": f"sqlite:///{tmp / 'ledger.db'}"},
        "safety": {"level": "off"},
        "cache": {"enabled": cache},
        "budgets": [{"scope": "global", "period": "total", "limit_usd": LIMIT}],
    }


def recorded(relay: Relay) -> tuple[BudgetManager, list[str]]:
    """Record counter operations and upstream calls, in order, in one list."""
    log: list[str] = []
    manager: BudgetManager = relay.services.budgets
    manager.counters = Recording(manager.counters, log)
    fake: FakeProvider = relay.services.providers["fake"]  # type: ignore[assignment]
    complete, stream = fake.complete, fake.stream

    async def noted_complete(request: ChatRequest) -> Any:
        log.append("upstream")
        return await complete(request)

    def noted_stream(request: ChatRequest) -> Any:
        log.append("upstream")
        return stream(request)

    fake.complete, fake.stream = noted_complete, noted_stream  # type: ignore[method-assign]
    return manager, log


async def spent(manager: BudgetManager) -> float:
    return float((await manager.status())[0]["spent_usd"])


async def ask(relay: Relay, text: str = "what is two and two", stream: bool = False) -> RequestContext:
    ctx = RequestContext()
    messages = [Message.user(text)]
    if stream:
        async for _ in relay.stream(model="m", messages=messages, ctx=ctx, temperature=0):
            pass
    else:
        await relay.chat(model="m", messages=messages, ctx=ctx, temperature=0)
    return ctx


async def test_a_miss_reserves_before_the_upstream_call_and_a_hit_never_reserves(tmp_path: Path) -> None:
    async with Relay(config(tmp_path)) as relay:
        manager, log = recorded(relay)
        miss = await ask(relay)
        assert miss.cache_status == "miss" and miss.cost_usd > 0
        assert log == ["get", "reserve", "upstream", "adjust"]
        log.clear()
        for stream in (False, True):
            hit = await ask(relay, stream=stream)
            assert hit.cache_status == "hit" and hit.cost_usd == 0.0
        # The read-only check, and nothing else: no reservation taken or given back.
        assert log == ["get", "get"]
        assert await spent(manager) == pytest.approx(miss.cost_usd, abs=1e-6)


async def test_the_reservation_is_held_while_the_upstream_answers(tmp_path: Path) -> None:
    async with Relay(config(tmp_path)) as relay:
        manager: BudgetManager = relay.services.budgets
        fake: FakeProvider = relay.services.providers["fake"]  # type: ignore[assignment]
        seen: list[float] = []
        complete = fake.complete

        async def watching(request: ChatRequest) -> Any:
            seen.append(await spent(manager))
            return await complete(request)

        fake.complete = watching  # type: ignore[method-assign]
        request = ChatRequest(model="m", messages=(Message.user("hold it"),), temperature=0)
        worst = relay.services.state["cost.estimator"].worst_case(request)
        ctx = await ask(relay, "hold it")
        assert worst > ctx.cost_usd > 0
        assert seen == [pytest.approx(worst, abs=1e-6)]
        assert await spent(manager) == pytest.approx(ctx.cost_usd, abs=1e-6)


async def test_a_used_up_budget_refuses_a_would_be_hit(tmp_path: Path) -> None:
    async with Relay(config(tmp_path)) as relay:
        manager, log = recorded(relay)
        await ask(relay)  # now cached
        applied = manager.applicable(RequestContext(), "m")
        await manager.counters.adjust([a.key for a in applied], round(LIMIT * 1_000_000), [3600])
        log.clear()
        with pytest.raises(BudgetExceededError) as err:
            await ask(relay)
        assert err.value.status == 429 and err.value.code == "budget_exceeded"
        assert "used up" in str(err.value)
        assert log == ["get"]
        assert relay.services.metrics.cache.labels(result="hit")._value.get() == 0


async def test_a_miss_that_does_not_fit_is_refused_before_the_upstream(tmp_path: Path) -> None:
    async with Relay(config(tmp_path)) as relay:
        manager, log = recorded(relay)
        applied = manager.applicable(RequestContext(), "m")
        # Head-room left, but less than the worst case of the next request: a hit would be
        # served, a miss must not start.
        await manager.counters.adjust([a.key for a in applied], round((LIMIT - 1e-5) * 1_000_000), [3600])
        log.clear()
        with pytest.raises(BudgetExceededError, match="would be exceeded"):
            await ask(relay)
        assert log == ["get", "reserve"]


async def test_a_request_that_fails_before_the_upstream_leaves_nothing_reserved(tmp_path: Path) -> None:
    async with Relay(config(tmp_path)) as relay:
        manager, log = recorded(relay)
        relay.services.providers["fake"].script([AuthenticationError("the upstream refused the key")])  # type: ignore[attr-defined]
        with pytest.raises(AuthenticationError):
            await ask(relay)
        assert log[:2] == ["get", "reserve"] and log[-1] == "adjust"
        assert await spent(manager) == 0.0


async def test_a_streamed_miss_cancelled_mid_stream_settles(tmp_path: Path) -> None:
    async with Relay(config(tmp_path)) as relay:
        manager, log = recorded(relay)
        fake: FakeProvider = relay.services.providers["fake"]  # type: ignore[assignment]
        fake.script([["one ", "two ", "three ", "four"]])
        fake.latency_s = 0.05
        request = ChatRequest(model="m", messages=(Message.user("count to four"),), temperature=0)
        worst = relay.services.state["cost.estimator"].worst_case(request)
        started = asyncio.Event()

        async def consume() -> None:
            async for _ in relay.stream(request):
                started.set()

        task = asyncio.create_task(consume())
        await started.wait()
        assert await spent(manager) == pytest.approx(worst, abs=1e-6)
        task.cancel()  # the client went away mid-stream (the server cancels its task)
        with pytest.raises(asyncio.CancelledError):
            await task
        assert log.count("reserve") == 1 and log.count("adjust") == 1
        # What the prompt cost (the answer was cut off): less than the worst case, more than nothing.
        assert 0 < await spent(manager) < worst


async def test_with_the_cache_off_the_reservation_is_taken_on_entry(tmp_path: Path) -> None:
    async with Relay(config(tmp_path, cache=False)) as relay:
        manager, log = recorded(relay)
        ctx = await ask(relay)
        assert log == ["reserve", "upstream", "adjust"]
        assert await spent(manager) == pytest.approx(ctx.cost_usd, abs=1e-6)
