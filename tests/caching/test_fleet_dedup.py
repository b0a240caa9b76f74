"""Dedup across gateway instances (issue #10), against a real redis-server on 127.0.0.1.

Two Relays sharing Redis stand for two gateway instances: identical requests split across them make
one upstream call (counted by the simulator). The claim protocol alone: the waiting instance gets
the leader's cached answer, takes over when the leader fails, stops waiting after
``cross_instance_wait_s``, and never hangs on a dead Redis.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from llmrelay import Relay
from llmrelay.caching.entry import CachedAnswer
from llmrelay.caching.fleet import LOCK_PREFIX, FleetFlights, Lease, fleet_flights
from llmrelay.clock import SystemClock
from llmrelay.config import Settings
from llmrelay.context import RequestContext
from llmrelay.metrics import Metrics
from llmrelay.services import Services
from llmrelay.types import ChatRequest, ChatResult, Message

from .conftest import SimHold, call_relay, sim_chat_calls, sim_config, until_all_joined

N = 200


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fleet_config(url: str, tmp_path: Path, redis_url: str, name: str, **dedup: Any) -> dict[str, Any]:
    return sim_config(url, tmp_path, storage={"url": f"sqlite:///{tmp_path / f'{name}.db'}"},
                      redis={"url": redis_url}, cache={"enabled": True, "backend": "redis"},
                      dedup={"cross_instance_wait_s": 30.0, **dedup})


def _fleet_outcomes(relay: Relay) -> dict[str, float]:
    metric = relay.services.metrics.dedup_fleet
    return {o: metric.labels(outcome=o)._value.get() for o in ("led", "joined", "timeout", "takeover", "unavailable")}


async def test_identical_requests_across_two_instances_make_one_upstream_call(
        sim: tuple[str, SimHold], tmp_path: Path, redis_url: str) -> None:
    url, hold = sim
    request = ChatRequest(model="m", messages=(Message.user(f"one answer for the fleet {tmp_path.name}"),),
                          temperature=0)
    async with httpx.AsyncClient() as client, \
            Relay(fleet_config(url, tmp_path, redis_url, "a")) as a, Relay(fleet_config(url, tmp_path, redis_url, "b")) as b:
        await client.post(f"{url}/_sim/reset")
        hold.open.clear()
        storm = asyncio.ensure_future(asyncio.gather(
            *(call_relay(a if i % 2 else b, request, i % 4 < 2) for i in range(N))))
        try:
            # Every caller on both instances joined a flight while the one upstream answer is held.
            await until_all_joined(N, lambda: sim_chat_calls(client, url), a.services.state["dedup.flights"],
                                   b.services.state["dedup.flights"])
        finally:
            hold.open.set()
        results = await storm
        calls = await sim_chat_calls(client, url)
        outcomes = [_fleet_outcomes(a), _fleet_outcomes(b)]
    assert calls == 1
    first = results[0][0]
    assert len(first.text.split()) >= 50 and first.finish_reason == "stop"
    assert all((r.text, r.finish_reason, r.usage) == (first.text, first.finish_reason, first.usage) for r, _ in results)
    payers = [ctx for _, ctx in results if not ctx.joined]
    assert len(payers) == 1 and payers[0].cost_usd > 0
    joined = [ctx for _, ctx in results if ctx.joined]
    assert all(c.cost_usd == 0 and c.cost_saved_usd == pytest.approx(payers[0].cost_usd) for c in joined)
    assert all(c.usage == first.usage and c.provider == "sim" for c in joined)
    # One instance led, the other was served the leader's answer from the shared cache.
    assert sorted((o["led"], o["joined"]) for o in outcomes) == [(0, 1), (1, 0)]


async def test_a_dead_redis_costs_no_wait(tmp_path: Path, sim: tuple[str, SimHold]) -> None:
    url, _ = sim
    dead = f"redis://127.0.0.1:{_closed_port()}/0"
    request = ChatRequest(model="m", messages=(Message.user("redis is gone"),), temperature=0)
    async with Relay(fleet_config(url, tmp_path, dead, "a")) as relay:
        started = time.monotonic()
        results = await asyncio.gather(*(call_relay(relay, request, False) for _ in range(5)))
        elapsed = time.monotonic() - started
        outcomes = _fleet_outcomes(relay)
    assert all(r.text == results[0][0].text and r.finish_reason == "stop" for r, _ in results)
    assert outcomes["unavailable"] == 1 and outcomes["timeout"] == 0
    # Far below the 30 s cross-instance wait: a dead Redis is never waited on.
    assert elapsed < 15, elapsed


# ---- the claim protocol alone ----------------------------------------------------------------


class SpyClock(SystemClock):
    """Real time; ``polled`` is set once a claim has found the key held and paused to poll again."""

    def __init__(self) -> None:
        self.polled = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        self.polled.set()
        await super().sleep(seconds)


def _instance(redis_url: str, clock: SystemClock, **dedup: Any) -> tuple[FleetFlights, Services]:
    settings = Settings.from_dict({"redis": {"url": redis_url}, "cache": {"enabled": True, "backend": "redis"},
                                   "dedup": {"cross_instance_wait_s": 5.0, **dedup}})
    services = Services(settings=settings, clock=clock, metrics=Metrics())
    fleet = fleet_flights(services)
    assert fleet is not None
    return fleet, services


@pytest.fixture
async def pair(redis_url: str) -> AsyncIterator[tuple[FleetFlights, FleetFlights, SpyClock]]:
    spy = SpyClock()
    (leader, s1), (follower, s2) = _instance(redis_url, SystemClock()), _instance(redis_url, spy)
    yield leader, follower, spy
    for services in (s1, s2):
        for close in services.on_close:
            await close()
        await services.state["shared.redis"].client.aclose()


ANSWER = ChatResult(id="r1", model="m", text="the shared answer", finish_reason="stop")


async def test_a_waiting_instance_gets_the_leaders_cached_answer(
        pair: tuple[FleetFlights, FleetFlights, SpyClock], tmp_path: Path) -> None:
    leader, follower, spy = pair
    key = f"m|{tmp_path.name[-32:]:0>32}"
    lease = await leader.claim(key)
    assert isinstance(lease, Lease)
    waiting = asyncio.ensure_future(follower.claim(key))
    await spy.polled.wait()
    ctx = RequestContext(provider="sim", cost_usd=0.5)
    await leader.cache.store(key, ChatRequest(model="m", messages=()), ctx, ANSWER, wait=True)
    await leader.release(lease)
    got = await waiting
    assert isinstance(got, CachedAnswer) and got.result.text == ANSWER.text and got.cost_usd == 0.5


async def test_a_waiting_instance_takes_over_when_the_leader_fails(
        pair: tuple[FleetFlights, FleetFlights, SpyClock], tmp_path: Path) -> None:
    leader, follower, spy = pair
    key = f"m|{tmp_path.name[-32:]:1>32}"
    lease = await leader.claim(key)
    assert isinstance(lease, Lease)
    waiting = asyncio.ensure_future(follower.claim(key))
    await spy.polled.wait()
    await leader.release(lease)                          # no answer stored: the call failed
    taken = await waiting
    assert isinstance(taken, Lease) and taken.token != lease.token
    assert follower.metrics.dedup_fleet.labels(outcome="takeover")._value.get() == 1
    # Released by its owner only: the old leader's late release leaves the new lock alone.
    await leader.release(lease)
    client = follower.health.client
    assert await client.get(LOCK_PREFIX + key) == taken.token.encode()
    await follower.release(taken)
    assert await client.exists(LOCK_PREFIX + key) == 0


async def test_waiting_stops_after_cross_instance_wait_s(redis_url: str, tmp_path: Path) -> None:
    spy = SpyClock()
    (leader, s1), (follower, s2) = _instance(redis_url, SystemClock()), _instance(
        redis_url, spy, cross_instance_wait_s=0.3)
    key = f"m|{tmp_path.name[-32:]:2>32}"
    lease = await leader.claim(key)
    assert isinstance(lease, Lease)
    started = time.monotonic()
    assert await follower.claim(key) is None
    assert time.monotonic() - started >= 0.3
    assert follower.metrics.dedup_fleet.labels(outcome="timeout")._value.get() == 1
    await leader.release(lease)
    for services in (s1, s2):
        await services.state["shared.redis"].client.aclose()


async def test_the_leader_keeps_its_lock_alive_while_its_call_runs(redis_url: str, tmp_path: Path) -> None:
    # A 1 s lock renewed every 1/3 s: a busy machine would need a 2/3 s stall to lose it (a 0.3 s
    # lock lost it after a 0.2 s stall of the event loop).
    leader, services = _instance(redis_url, SystemClock(), cross_instance_lock_s=1.0)
    key = f"m|{tmp_path.name[-32:]:3>32}"
    lease = await leader.claim(key)
    assert isinstance(lease, Lease)
    client = services.state["shared.redis"].client
    await asyncio.sleep(2.5)                             # well past the lock's 1 s lifetime
    assert await client.get(LOCK_PREFIX + key) == lease.token.encode()
    await leader.release(lease)
    assert await client.exists(LOCK_PREFIX + key) == 0
    await client.aclose()


def test_fleet_dedup_needs_the_shared_cache() -> None:
    for settings in ({"cache": {"enabled": True, "backend": "redis"}},                      # no redis.url
                     {"redis": {"url": "redis://127.0.0.1:1/0"}, "cache": {"enabled": True}},  # memory cache
                     {"redis": {"url": "redis://127.0.0.1:1/0"}, "cache": {"enabled": True, "backend": "redis"},
                      "dedup": {"cross_instance_wait_s": 0}}):
        assert fleet_flights(Services(settings=Settings.from_dict(settings))) is None
