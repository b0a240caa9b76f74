"""RequestContext.defer / run_after_response: bookkeeping that runs once the response is out."""

from __future__ import annotations

import asyncio
import logging

import pytest

from llmrelay.context import RequestContext


def test_without_an_edge_nothing_is_deferred() -> None:
    ctx = RequestContext()
    assert ctx.defer(lambda: None) is False


async def test_work_runs_in_order_awaitables_awaited_and_failures_isolated(caplog: pytest.LogCaptureFixture) -> None:
    ctx = RequestContext(after_response=[])
    ran: list[str] = []

    async def settle() -> None:
        await asyncio.sleep(0)
        ran.append("settle")

    def boom() -> None:
        raise RuntimeError("broken bookkeeping")

    assert ctx.defer(lambda: ran.append("first"))
    assert ctx.defer(boom)
    assert ctx.defer(settle)
    assert ctx.defer(lambda: ran.append("last"))
    assert ran == []
    with caplog.at_level(logging.ERROR, "llmrelay.context"):
        await ctx.run_after_response()
    assert ran == ["first", "last", "settle"]
    assert any(ctx.request_id in r.getMessage() for r in caplog.records)
    # Once drained, later work is not queued: the caller runs it itself.
    assert ctx.defer(lambda: None) is False
    await ctx.run_after_response()  # idempotent


async def test_awaited_work_finishes_even_when_the_request_is_cancelled() -> None:
    ctx = RequestContext(after_response=[])
    gate = asyncio.Event()
    done: list[bool] = []

    async def settle() -> None:
        await gate.wait()
        done.append(True)

    ctx.defer(settle)
    runner = asyncio.ensure_future(ctx.run_after_response())
    await asyncio.sleep(0)
    runner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await runner
    gate.set()
    for _ in range(5):
        await asyncio.sleep(0)
    assert done == [True]
