"""Volume-discount tiers on the fleet's spend: two gateway processes (two engines, one real Redis)
see each other's spend through the shared counters; without Redis, spend is per process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from llmrelay import Message, Relay
from llmrelay.clock import ManualClock
from llmrelay.config import PricingConfig
from llmrelay.context import RequestContext
from llmrelay.cost.counters import MemoryCounters, RedisCounters
from llmrelay.cost.discount_spend import KEY_PREFIX, LocalSpend, SharedSpend
from llmrelay.cost.pricing import PricingEngine
from llmrelay.types import Usage

from .conftest import relay_config

CFG = {"overrides": {"m": {"input_per_mtok": 1_000_000, "output_per_mtok": 0}},
       "volume_discounts": [{"above_usd": 4.0, "discount": 0.25}]}


def _call(engine: PricingEngine, dollars: int) -> float:
    ctx = RequestContext(provider="p", provider_kind="openai", upstream_model="m")
    ctx.usage = Usage(input_tokens=dollars)
    engine.apply(ctx)
    return ctx.cost_usd


async def test_two_processes_share_the_period_spend(redis_url: str) -> None:
    import redis.asyncio as aioredis

    client = aioredis.from_url(redis_url)
    await client.flushdb()
    clock = ManualClock(1_767_225_600.0)
    cfg = PricingConfig.model_validate(CFG)
    a_spend, b_spend = SharedSpend(RedisCounters(redis_url)), SharedSpend(RedisCounters(redis_url))
    a = PricingEngine(cfg, clock=clock, spend=a_spend)
    b = PricingEngine(cfg, clock=clock, spend=b_spend)
    assert [_call(a, 1) for _ in range(3)] == [1.0, 1.0, 1.0]   # $3.00 spent by process A
    await a_spend.aclose()                               # pushed to Redis
    await b.start()                                      # B starts and reads the fleet's $3.00
    assert b_spend.total == pytest.approx(3.0)
    # Over the $4 tier after one call of its own: on its own spend B would pay full price.
    assert [_call(b, 1), _call(b, 1)] == [1.0, 0.75]
    await b_spend.aclose()
    await a.start()                                      # a reload (or any push) reads the total back
    assert a_spend.total == pytest.approx(5.0)          # tiers count spend at list price
    assert _call(a, 1) == 0.75                           # A alone has spent $3
    await a_spend.aclose()
    stored = await client.get(KEY_PREFIX + "2026-01")
    assert int(stored) == 6_000_000                      # six $1.00 calls at list price, in micro-dollars
    assert 0 < await client.ttl(KEY_PREFIX + "2026-01") <= 32 * 86400
    await client.aclose()


async def test_small_amounts_add_up_exactly_and_failures_keep_spend() -> None:
    class Flaky(MemoryCounters):
        fail = True

        async def adjust(self, keys: Any, delta: int, ttls: Any) -> list[int]:
            if self.fail:
                raise ConnectionError("redis down")
            return await super().adjust(keys, delta, ttls)

    counters = Flaky()
    spend = SharedSpend(counters)
    for _ in range(10):
        spend.add("p", 0.0000004, 60)                    # below a micro-dollar each
    await spend.aclose()                                 # fails: nothing lost
    assert spend.total == pytest.approx(0.000004)
    counters.fail = False
    await spend.aclose()
    assert (await counters.get([KEY_PREFIX + "p"])) == [4]
    assert spend.add("q", 1.0, 60) == 0.0                # a new period starts from zero


async def test_gateway_uses_shared_spend_only_with_redis(tmp_path: Path, redis_url: str) -> None:
    pricing = {**relay_config(tmp_path)["pricing"], "volume_discounts": CFG["volume_discounts"]}
    async with Relay(relay_config(tmp_path, pricing=pricing)) as local:
        assert isinstance(local.services.pricing._spend, LocalSpend)
    shared_cfg = relay_config(tmp_path, pricing=pricing, redis={"url": redis_url})
    async with Relay(shared_cfg) as relay:
        spend = relay.services.pricing._spend
        assert isinstance(spend, SharedSpend)
        await relay.chat(model="m", messages=[Message.user("hello " * 50)])
        await spend.aclose()
        assert spend.total > 0
        assert spend.total == pytest.approx(await spend.refresh(spend.label, 60))
