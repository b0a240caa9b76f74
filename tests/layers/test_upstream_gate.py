"""The upstream gate: armed work runs once, in order, only when the gate is opened."""

from __future__ import annotations

import pytest

from llmrelay.context import RequestContext
from llmrelay.errors import BudgetExceededError
from llmrelay.layers._upstream_gate import arm, open_gate


async def test_armed_work_runs_once_in_order_when_opened() -> None:
    ctx, ran = RequestContext(), []

    async def first() -> None:
        ran.append("first")

    async def second() -> None:
        ran.append("second")

    arm(ctx, first)
    arm(ctx, second)
    assert ran == []
    await open_gate(ctx)
    await open_gate(ctx)
    assert ran == ["first", "second"]


async def test_an_unopened_gate_runs_nothing_and_an_error_propagates() -> None:
    ctx = RequestContext()
    await open_gate(ctx)  # nothing armed: nothing to do

    async def refuse() -> None:
        raise BudgetExceededError("no")

    arm(ctx, refuse)
    with pytest.raises(BudgetExceededError):
        await open_gate(ctx)
    await open_gate(ctx)  # taken: it does not run (or raise) again
