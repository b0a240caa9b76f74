"""Strategies, backoff policies and health checks, each on its own."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable

import pytest

from llmrelay.clock import ManualClock
from llmrelay.context import RequestContext
from llmrelay.errors import AuthenticationError, ProviderUnavailableError, RateLimitError
from llmrelay.routing.circuit import CircuitBreaker
from llmrelay.routing.health import probe, router_status
from llmrelay.routing.retry import default_backoff, full_jitter, honour_retry_after
from llmrelay.routing.state import DeploymentState
from llmrelay.routing.strategies import STRATEGIES, least_busy, lowest_latency, weighted
from llmrelay.types import ModelInfo

from .conftest import Harness

H = Callable[..., Harness]


def _deps(*weights: float) -> list[DeploymentState]:
    clock = ManualClock()
    return [
        DeploymentState(f"p{i}", "m", CircuitBreaker(5, 30, 30, clock), weight=w) for i, w in enumerate(weights)
    ]


def test_weighted_first_pick_follows_weights() -> None:
    deps = _deps(3.0, 1.0)
    rng = random.Random(3)
    firsts = Counter(weighted(deps, rng.random)[0].provider for _ in range(4000))
    share = firsts["p0"] / 4000
    assert 0.70 < share < 0.80  # expected 0.75


def test_lowest_latency_measures_unknown_first_then_prefers_fastest() -> None:
    deps = _deps(1, 1, 1)
    deps[0].observe_latency(0.5)
    deps[1].observe_latency(0.1)
    assert lowest_latency(deps, random.random)[0] is deps[2]  # never measured
    deps[2].observe_latency(0.3)
    assert [d.provider for d in lowest_latency(deps, random.random)] == ["p1", "p2", "p0"]
    # The moving average follows a deployment that slows down.
    for _ in range(10):
        deps[1].observe_latency(2.0)
    assert lowest_latency(deps, random.random)[0] is deps[2]


def test_least_busy() -> None:
    deps = _deps(1, 1)
    deps[0].in_flight = 4
    assert least_busy(deps, random.random)[0] is deps[1]


async def test_strategy_from_config_spreads_load(harness: H) -> None:
    h = harness(n=2, routing={"strategy": "weighted"})
    providers = Counter([(await h.call())[1].provider for _ in range(200)])
    assert set(providers) == {"a", "b"} and min(providers.values()) > 60


async def test_per_request_strategy_override(harness: H) -> None:
    h = harness(n=2)
    h.router.table["a/model-a"].in_flight = 3  # pretend "a" is busy
    _, ctx = await h.call(ctx=RequestContext(strategy="least_busy"))
    assert ctx.provider == "b"
    assert set(STRATEGIES) >= {"ordered", "weighted", "latency", "least_busy"}


def test_full_jitter_stays_within_exponential_cap() -> None:
    rng = random.Random(5)
    wait = full_jitter(0.5, 4.0, rng.random)
    for retry, cap in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (9, 4.0)]:
        samples = [wait(retry, None) for _ in range(200)]
        assert all(0 <= s <= cap for s in samples)
        assert max(samples) > cap * 0.8  # jitter uses the whole range


def test_retry_after_wins_but_is_capped() -> None:
    policy = honour_retry_after(full_jitter(0.1, 1.0, lambda: 1.0), max_s=10.0)
    assert policy(1, RateLimitError("x", retry_after=4.0)) == 4.0
    assert policy(1, RateLimitError("x", retry_after=400.0)) == 10.0
    assert policy(1, ProviderUnavailableError("x")) == pytest.approx(0.1)
    assert default_backoff(0.1, 1.0, lambda: 0.0)(1, None) == 0.0


async def test_startup_check_opens_breaker_of_misconfigured_deployment(harness: H) -> None:
    h = harness(n=2)

    async def refused() -> list[ModelInfo]:
        raise AuthenticationError("invalid api key", upstream_status=401)

    h.fake("a").list_models = refused  # type: ignore[method-assign]
    report = await probe(h.services, h.router.table, startup=True)
    assert report["a"] is not None and "invalid api key" in report["a"] and report["b"] is None
    rows = {r["provider"]: r for r in router_status(h.services)}
    assert rows["a"]["circuit"] == "open" and rows["b"]["circuit"] == "closed"
    _, ctx = await h.call()
    assert ctx.provider == "b" and h.fake("a").calls == []


async def test_health_checks_run_on_start_and_stop_on_close(harness: H) -> None:
    h = harness(n=1, routing={"health_check_interval_s": 5})
    calls = 0

    async def models() -> list[ModelInfo]:
        nonlocal calls
        calls += 1
        return []

    h.fake("a").list_models = models  # type: ignore[method-assign]
    from llmrelay.routing.health import register_health_checks

    register_health_checks(h.services, h.router.table)
    for start in h.services.on_start:
        await start()
    import asyncio

    for _ in range(20):
        await asyncio.sleep(0)
    for close in h.services.on_close:
        await close()
    # With the manual clock the interval passes at once: the probe ran at start and repeated.
    assert calls >= 2
