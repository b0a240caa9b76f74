"""The budget manager keeps the current period between requests: it must still roll at midnight."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from llmrelay.clock import ManualClock
from llmrelay.config import Settings
from llmrelay.context import RequestContext
from llmrelay.cost.budgets import BudgetManager
from llmrelay.cost.counters import MemoryCounters
from llmrelay.cost.periods import period_of
from llmrelay.errors import BudgetExceededError


@dataclass
class _Key:
    id: str = "k1"
    budget_usd: float | None = 1.0
    budget_period: str | None = "day"


def _manager(clock: ManualClock, tz: str = "Asia/Kathmandu") -> BudgetManager:
    settings = Settings.from_dict({"pricing": {"timezone": tz},
                                   "budgets": [{"scope": "global", "period": "week", "limit_usd": 100.0}]})
    return BudgetManager(settings, MemoryCounters(clock), clock=clock)


def test_applied_periods_follow_the_clock_across_boundaries() -> None:
    clock = ManualClock(1_700_000_000.0)
    manager = _manager(clock)
    ctx = RequestContext(key=_Key())
    # Steps of 7 h 13 min cross day and week boundaries at odd offsets (UTC+5:45).
    for _ in range(60):
        applied = {a.rule.scope: a for a in manager.applicable(ctx)}
        now = clock.time()
        assert applied["global"].period == period_of("week", now, "Asia/Kathmandu")
        assert applied["key"].period == period_of("day", now, "Asia/Kathmandu")
        clock.advance(7 * 3600 + 13 * 60)


def test_instant_just_before_and_at_midnight() -> None:
    day = period_of("day", 1_700_000_000.0, "Europe/Berlin")
    clock = ManualClock(day.end - 0.001)
    manager = _manager(clock, "Europe/Berlin")
    ctx = RequestContext(key=_Key())
    before = {a.rule.scope: a for a in manager.applicable(ctx)}["key"]
    assert before.period.label == day.label
    clock.advance(0.001)
    after = {a.rule.scope: a for a in manager.applicable(ctx)}["key"]
    assert after.period.label != day.label and after.period.start == day.end


async def test_a_spent_day_budget_is_free_again_the_next_day() -> None:
    clock = ManualClock(1_700_000_000.0)
    manager = _manager(clock, "UTC")
    ctx = RequestContext(key=_Key())
    res = await manager.reserve(ctx, 0.9)
    await manager.settle(res, 0.9)
    with pytest.raises(BudgetExceededError):
        await manager.reserve(ctx, 0.2)
    clock.advance(period_of("day", clock.time(), "UTC").end - clock.time())
    await manager.reserve(ctx, 0.2)


def test_a_changed_key_budget_is_seen() -> None:
    clock = ManualClock()
    manager = _manager(clock)
    key = _Key()
    first = {a.rule.scope: a for a in manager.applicable(RequestContext(key=key))}["key"]
    key.budget_usd, key.budget_period = 5.0, "month"
    second = {a.rule.scope: a for a in manager.applicable(RequestContext(key=key))}["key"]
    assert (first.limit, first.rule.period) == (1_000_000, "day")
    assert (second.limit, second.rule.period) == (5_000_000, "month")
