"""``TokenBucket.try_take`` and ``Limit.try_acquire`` refill once per call and take from that same
reading: on a clock that moves between calls (never within one) they leave every bucket exactly
where the two-step reference (``wait_for`` then ``take``) leaves it, and answer the same waits."""

from __future__ import annotations

import random

import pytest

from llmrelay.clock import ManualClock
from llmrelay.ratelimit.bucket import Limit, TokenBucket


def reference_try_acquire(limit: Limit, tokens: float) -> float:
    wait = limit.wait_for(tokens)
    if wait == 0.0:
        limit.take(tokens)
    return wait


def state(limit: Limit) -> list[tuple[float, float]]:
    return [(b._tokens, b._updated) for b in (limit.rpm, limit.tpm) if b is not None]


@pytest.mark.parametrize(("rpm", "tpm"), [(30, 4000), (30, None), (None, 4000)])
def test_try_acquire_matches_the_two_step_reference(rpm: int | None, tpm: int | None) -> None:
    rng = random.Random((rpm or 0) * 7 + (tpm or 0))
    clock_a, clock_b = ManualClock(), ManualClock()
    fast, ref = Limit.per_minute(rpm, tpm, clock_a), Limit.per_minute(rpm, tpm, clock_b)
    assert fast is not None and ref is not None
    refused = 0
    for _ in range(2_000):
        step = rng.choice((0.0, 0.0, 0.05, 0.5, 3.0))
        clock_a.advance(step)
        clock_b.advance(step)
        tokens = rng.choice((10, 200, 900, 5000))
        got, want = fast.try_acquire(tokens), reference_try_acquire(ref, tokens)
        assert got == want
        refused += got > 0
        if rng.random() < 0.3:
            delta = rng.randint(-300, 300)
            fast.correct_now(delta)
            ref.correct_now(delta)
        assert state(fast) == state(ref)
    assert 0 < refused < 2_000  # both branches were taken


def test_try_take_matches_wait_for_then_take() -> None:
    rng = random.Random(7)
    clock_a, clock_b = ManualClock(), ManualClock()
    fast, ref = TokenBucket(5, 60.0, clock_a), TokenBucket(5, 60.0, clock_b)
    outcomes = set()
    for _ in range(1_000):
        step = rng.choice((0.0, 1.0, 12.0))
        clock_a.advance(step)
        clock_b.advance(step)
        n = rng.choice((1.0, 2.0))
        want = ref.wait_for(n)
        if want == 0.0:
            ref.take(n)
        assert fast.try_take(n) == want
        assert (fast._tokens, fast._updated) == (ref._tokens, ref._updated)
        outcomes.add(want == 0.0)
    assert outcomes == {True, False}
