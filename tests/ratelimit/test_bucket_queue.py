"""Token buckets and the fair priority queue, on a manual clock."""

from __future__ import annotations

import asyncio

import pytest

from llmrelay.clock import ManualClock
from llmrelay.errors import RateLimitError
from llmrelay.ratelimit.bucket import Limit, TokenBucket
from llmrelay.ratelimit.queue import FairQueue


def test_bucket_refills_at_its_rate() -> None:
    clock = ManualClock()
    b = TokenBucket(capacity=6, period_s=60, clock=clock)
    assert [b.try_take(1) for _ in range(6)] == [0.0] * 6
    assert b.try_take(1) == pytest.approx(10.0)
    clock.advance(10)
    assert b.try_take(1) == 0.0
    assert b.try_take(1) == pytest.approx(10.0)


def test_oversized_request_passes_only_on_a_full_bucket() -> None:
    clock = ManualClock()
    b = TokenBucket(capacity=100, period_s=60, clock=clock)
    assert b.try_take(500) == 0.0  # full bucket: let through, goes into debt
    assert b.try_take(1) > 0
    clock.advance(60 * 5)
    assert b.available == 100


def test_limit_is_all_or_nothing() -> None:
    clock = ManualClock()
    limit = Limit.per_minute(rpm=10, tpm=100, clock=clock)
    assert limit is not None
    assert limit.try_acquire(90) == 0.0
    wait = limit.try_acquire(50)
    assert wait > 0
    assert limit.rpm is not None and limit.rpm.available == pytest.approx(9)  # nothing taken
    limit.correct_now(-80)  # used 10 instead of 90
    assert limit.try_acquire(50) == 0.0


async def test_queue_refuses_after_max_wait_with_retry_after() -> None:
    clock = ManualClock()
    limit = Limit.per_minute(rpm=1, tpm=None, clock=clock)
    assert limit is not None
    q = FairQueue(clock)
    assert await q.acquire(lambda: limit.try_acquire(1), "normal", "k", 5.0) == 0.0
    with pytest.raises(RateLimitError) as info:
        await q.acquire(lambda: limit.try_acquire(1), "normal", "k", 5.0)
    assert info.value.retry_after == pytest.approx(60.0)
    assert q.waiting == 0


async def test_waiter_is_admitted_when_capacity_returns() -> None:
    clock = ManualClock()
    limit = Limit.per_minute(rpm=60, tpm=None, clock=clock)  # one a second
    assert limit is not None
    q = FairQueue(clock)
    for _ in range(60):
        await q.acquire(lambda: limit.try_acquire(1), "normal", "k", 5.0)
    waited = await q.acquire(lambda: limit.try_acquire(1), "normal", "k", 5.0)
    assert 0 < waited <= 1.0 + 1e-6


class SteppedClock(ManualClock):
    """Time moves only when the test steps it; ``sleep`` waits for that (ManualClock's sleep would
    move time itself, which with many concurrent sleepers compresses the timeline)."""

    async def sleep(self, seconds: float) -> None:
        target = self.monotonic() + seconds
        while self.monotonic() < target:  # noqa: ASYNC110 - the test steps time by hand
            await asyncio.sleep(0)


async def _saturated_order(owners_and_priorities: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Queue requests against a shared 1-per-second limit that is already spent; step time and
    return the order in which they are admitted."""
    clock = SteppedClock()
    limit = Limit.per_minute(rpm=60, tpm=None, clock=clock)
    assert limit is not None
    q = FairQueue(clock)
    while limit.try_acquire(1) == 0.0:
        pass
    admitted: list[tuple[str, str]] = []

    async def one(owner: str, priority: str) -> None:
        await q.acquire(lambda: limit.try_acquire(1), priority, owner, 1000.0)
        admitted.append((owner, priority))

    tasks = [asyncio.create_task(one(o, p)) for o, p in owners_and_priorities]
    for _ in range(5):
        await asyncio.sleep(0)  # every request is in the queue before time moves
    assert q.waiting == len(tasks)
    while not all(t.done() for t in tasks):
        clock.advance(0.25)
        for _ in range(3):
            await asyncio.sleep(0)
    await asyncio.gather(*tasks)
    return admitted


async def test_high_priority_is_served_before_low() -> None:
    arrivals = [("k1", "low")] * 5 + [("k2", "high")] * 5 + [("k3", "normal")] * 5
    order = await _saturated_order(arrivals)
    prios = [p for _, p in order]
    assert prios == ["high"] * 5 + ["normal"] * 5 + ["low"] * 5


async def test_noisy_key_cannot_starve_a_quiet_one() -> None:
    arrivals = [("noisy", "normal")] * 20 + [("quiet", "normal")] * 2
    order = await _saturated_order(arrivals)
    # The quiet key's two requests are served among the first four, not after the 20 noisy ones.
    quiet_positions = [i for i, (o, _) in enumerate(order) if o == "quiet"]
    assert quiet_positions and max(quiet_positions) <= 3
    assert len(order) == 22


async def test_cancelled_waiter_leaves_the_queue() -> None:
    clock = ManualClock()
    q = FairQueue(clock)

    async def never() -> float:
        return 10.0

    task = asyncio.create_task(q.acquire(never, "normal", "k", 50.0))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert q.waiting == 0
