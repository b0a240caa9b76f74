"""routing.timer.Timer: asyncio.timeout's outcome for one await, with a bare timer handle."""

from __future__ import annotations

import asyncio

import pytest

from llmrelay.routing.timer import Timer


async def _timed(aw: object, seconds: float) -> object:
    timer = Timer(seconds)
    try:
        return await aw  # type: ignore[misc]
    finally:
        timer.stop()


async def test_expiry_is_a_timeout_and_leaves_the_task_uncancelled() -> None:
    never = asyncio.get_running_loop().create_future()
    with pytest.raises(TimeoutError):
        await _timed(never, 0.01)
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0
    await asyncio.sleep(0)  # no cancellation left pending for the next await


async def test_an_answer_in_time_is_returned_and_the_timer_disarmed() -> None:
    assert await _timed(asyncio.sleep(0, "answer"), 0.05) == "answer"
    await asyncio.sleep(0.08)  # past the timer: it must not cancel anything now


async def test_an_outside_cancel_stays_a_cancel() -> None:
    started = asyncio.Event()

    async def call() -> object:
        started.set()
        return await _timed(asyncio.get_running_loop().create_future(), 30)

    task = asyncio.create_task(call())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_outside_a_task_it_refuses() -> None:
    def sync_use() -> None:
        Timer(1.0)

    with pytest.raises(RuntimeError):
        await asyncio.get_running_loop().run_in_executor(None, sync_use)
