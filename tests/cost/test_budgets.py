"""Budgets hold under concurrency: 300 requests at once against $1.00, memory and Redis."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from llmrelay import Message, Relay
from llmrelay.context import RequestContext
from llmrelay.cost.budgets import BudgetManager
from llmrelay.cost.counters import MemoryCounters, RedisCounters
from llmrelay.errors import BudgetExceededError

from .conftest import relay_config

LIMIT = 1.00


async def _storm(relay: Relay, n: int = 300) -> tuple[list[RequestContext], int]:
    words = " ".join(["w"] * 2000)

    async def one(i: int) -> RequestContext | None:
        ctx = RequestContext(team="t")
        try:
            await relay.chat(model="m", messages=[Message.user(f"{i} {words}")], ctx=ctx, max_tokens=50)
        except BudgetExceededError:
            return None
        return ctx

    results = await asyncio.gather(*(one(i) for i in range(n)))
    ok = [r for r in results if r is not None]
    return ok, n - len(ok)


async def _check(relay: Relay) -> None:
    ok, refused = await _storm(relay)
    spent = sum(c.cost_usd for c in ok)
    worst = relay.services.state["cost.estimator"].worst_case
    from llmrelay.types import ChatRequest

    margin = worst(ChatRequest(model="m", messages=(Message.user("0 " + " ".join(["w"] * 2000)),), max_tokens=50))
    assert spent <= LIMIT + 1e-9
    assert refused > 0, "the storm should exhaust the budget"
    # No request that fit was refused while head-room remained: what is left is under one reservation.
    assert LIMIT - spent < margin
    # Every reservation was settled: the counter holds exactly what was spent.
    status = await relay.services.budgets.status()
    assert status[0]["spent_usd"] == pytest.approx(spent, abs=1e-5)


async def test_concurrent_requests_never_overrun_memory(tmp_path: Path) -> None:
    cfg = relay_config(tmp_path, budgets=[{"scope": "team", "id": "t", "period": "day", "limit_usd": LIMIT}])
    async with Relay(cfg) as relay:
        relay.services.providers["fake"].latency_s = 0.001  # type: ignore[attr-defined]
        await _check(relay)


@pytest.mark.redis
async def test_concurrent_requests_never_overrun_redis(tmp_path: Path, redis_url: str) -> None:
    import redis.asyncio as aioredis

    await aioredis.from_url(redis_url).flushdb()
    cfg = relay_config(tmp_path, budgets=[{"scope": "team", "id": "t", "period": "day", "limit_usd": LIMIT}],
                       redis={"url": redis_url})
    async with Relay(cfg) as relay:
        counters = relay.services.budgets.counters
        # Behind the Redis circuit (llmrelay.shared_state.counters) when redis.url is set.
        assert isinstance(getattr(counters, "remote", counters), RedisCounters)
        relay.services.providers["fake"].latency_s = 0.001  # type: ignore[attr-defined]
        await _check(relay)


class _Key:
    id, budget_usd, budget_period = "k1", 0.5, "day"


async def test_key_budget_alerts_once_and_refuses(tmp_path: Path) -> None:
    posted: list[dict[str, Any]] = []
    cfg = relay_config(tmp_path, alerts={"webhook_url": "http://127.0.0.1:9/hook"})
    async with Relay(cfg) as relay:
        manager: BudgetManager = relay.services.budgets

        async def post(url: str, payload: dict[str, Any], timeout: float) -> None:
            posted.append(payload)

        assert manager.alerter is not None
        manager.alerter._post = post
        ctx = RequestContext(key=_Key(), key_id="k1")
        for _ in range(3):
            res = await manager.reserve(ctx, 0.1)
            await manager.settle(res, 0.1)
        await manager.alerter.aclose()
        assert [p["fraction"] for p in posted] == [0.5]
        res = await manager.reserve(ctx, 0.1)
        await manager.settle(res, 0.1)
        await manager.alerter.aclose()
        assert [p["fraction"] for p in posted] == [0.5, 0.8]
        with pytest.raises(BudgetExceededError) as err:
            await manager.reserve(ctx, 0.2)
        assert err.value.status == 429 and err.value.code == "budget_exceeded"


async def test_emergency_brake_trips_and_resets(tmp_path: Path) -> None:
    cfg = relay_config(tmp_path, emergency_brake={"max_usd": 0.3, "window_s": 60})
    async with Relay(cfg) as relay:
        manager: BudgetManager = relay.services.budgets
        ctx = RequestContext()
        for _ in range(4):
            await manager.settle(await manager.reserve(ctx, 0.1), 0.1)
        assert await manager.brake_tripped()
        with pytest.raises(BudgetExceededError, match="emergency"):
            await relay.chat(model="m", messages=[Message.user("hi")])
        await manager.reset_brake()
        assert (await relay.chat(model="m", messages=[Message.user("hi")])).text


async def test_cancelled_request_releases_its_reservation() -> None:
    from llmrelay.config import Settings

    settings = Settings.from_dict({"budgets": [{"scope": "global", "period": "total", "limit_usd": 1.0}]})
    manager = BudgetManager(settings, MemoryCounters())
    res = await manager.reserve(RequestContext(), 0.9)
    with pytest.raises(BudgetExceededError):
        await manager.reserve(RequestContext(), 0.2)
    await manager.settle(res, 0.0)
    await manager.settle(res, 0.0)  # idempotent
    await manager.reserve(RequestContext(), 0.9)
