"""The budgets a caller falls under are kept between requests: a change of caller, key budget or
period must still show at once, and the read-only check reads the same counters as reserve."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from llmrelay.clock import ManualClock
from llmrelay.config import Settings
from llmrelay.context import RequestContext
from llmrelay.cost.budgets import BudgetManager
from llmrelay.cost.counters import MemoryCounters
from llmrelay.errors import BudgetExceededError


@dataclass
class _Key:
    id: str = "k1"
    budget_usd: float | None = 1.0
    budget_period: str | None = "day"


def _manager(clock: ManualClock) -> BudgetManager:
    settings = Settings.from_dict({"budgets": [
        {"scope": "global", "period": "total", "limit_usd": 100.0},
        {"scope": "team", "id": "red", "period": "month", "limit_usd": 10.0},
        {"scope": "user", "period": "week", "limit_usd": 5.0},
    ]})
    return BudgetManager(settings, MemoryCounters(clock), clock=clock)


def _scopes(manager: BudgetManager, ctx: RequestContext) -> dict[str, tuple[str, float]]:
    return {a.rule.scope: (a.subject, a.rule.limit_usd) for a in manager.applicable(ctx, "m")}


def test_each_caller_gets_its_own_budgets_and_a_key_change_shows_at_once() -> None:
    manager = _manager(ManualClock(1_700_000_000.0))
    key = _Key()
    red = RequestContext(team="red", user="ann", key=key, key_id="k1")
    blue = RequestContext(team="blue", user="bob")
    assert _scopes(manager, red) == {"global": ("*", 100.0), "team": ("red", 10.0), "user": ("ann", 5.0),
                                     "key": ("k1", 1.0)}
    assert _scopes(manager, blue) == {"global": ("*", 100.0), "user": ("bob", 5.0)}
    assert manager.applicable(red, "m") is manager.applicable(red, "m")  # kept, not rebuilt
    key.budget_usd = 3.0
    assert _scopes(manager, red)["key"] == ("k1", 3.0)
    key.budget_usd = None
    assert "key" not in _scopes(manager, red)


def test_kept_budgets_roll_with_their_period() -> None:
    clock = ManualClock(1_700_000_000.0)
    manager = _manager(clock)
    ctx = RequestContext(user="ann", key=_Key(), key_id="k1")
    before = {a.rule.scope: a.key for a in manager.applicable(ctx, "m")}
    clock.advance(86_400)
    after = {a.rule.scope: a.key for a in manager.applicable(ctx, "m")}
    assert after["key"] != before["key"]  # a new day: a new counter for the key's day budget
    assert after["global"] == before["global"]  # the total never rolls


async def test_the_check_refuses_a_used_up_budget_and_the_brake() -> None:
    clock = ManualClock(1_700_000_000.0)
    manager = _manager(clock)
    ctx = RequestContext(user="ann")
    applied = manager.applicable(ctx, "m")
    await manager.check(applied)
    res = await manager.reserve_applied(applied, 4.0)
    await manager.check(applied)  # 4 of 5 used: not used up
    with pytest.raises(BudgetExceededError, match="would be exceeded"):
        await manager.reserve_applied(applied, 2.0)
    await manager.settle(res, 5.0)
    with pytest.raises(BudgetExceededError, match="used up") as err:
        await manager.check(applied)
    assert err.value.status == 429 and err.value.code == "budget_exceeded"
    await manager.check(manager.applicable(RequestContext(user="bob"), "m"))
    await manager.counters.flag("llmrelay:budget:brake:tripped", 60)
    with pytest.raises(BudgetExceededError, match="brake"):
        await manager.check(manager.applicable(RequestContext(user="bob"), "m"))


class _Shared:
    """A shared (fleet) counter store: the in-memory one without its in-process fast path, with
    its reads counted (each would be a Redis round trip)."""

    def __init__(self, clock: ManualClock) -> None:
        self.inner = MemoryCounters(clock)
        self.gets = 0

    async def get(self, keys: list[str]) -> list[int]:
        self.gets += 1
        return await self.inner.get(keys)

    def __getattr__(self, name: str) -> object:
        if name == "peek":
            raise AttributeError(name)
        return getattr(self.inner, name)


async def test_with_shared_counters_the_check_reads_them_at_most_once_a_second() -> None:
    clock = ManualClock(1_700_000_000.0)
    settings = Settings.from_dict({"budgets": [{"scope": "global", "period": "total", "limit_usd": 1.0}]})
    shared = _Shared(clock)
    manager = BudgetManager(settings, shared, clock=clock)  # type: ignore[arg-type]
    applied = manager.applicable(RequestContext(), "m")
    for _ in range(5):
        await manager.check(applied)
    assert shared.gets == 1
    # This instance's own settle returns the new value: used up here shows at once, no read.
    await manager.settle(await manager.reserve_applied(applied, 0.5), 1.0)
    with pytest.raises(BudgetExceededError, match="used up"):
        await manager.check(applied)
    assert shared.gets == 1
    # Another instance gives budget back (or a new period): seen within a second.
    await shared.inner.adjust([applied[0].key], -1_000_000, [3600])
    with pytest.raises(BudgetExceededError):
        await manager.check(applied)
    clock.advance(1.0)
    await manager.check(applied)
    assert shared.gets == 2
