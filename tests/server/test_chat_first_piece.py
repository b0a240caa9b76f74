"""The chat edge's streams write their first piece right after the headers, in the same step.

The first chunk is pulled before the headers are sent, so the first piece is ready; it must not
wait a loop turn for the writer task (time to first chunk). A marker callback scheduled right
after the send starts shows whether anything else ran in between.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from llmrelay.context import RequestContext
from llmrelay.server._chat import _StreamThenWork


async def _never_disconnect() -> dict[str, Any]:
    await asyncio.Future()
    raise AssertionError("unreachable")


async def test_first_piece_goes_out_before_the_loop_turns() -> None:
    events: list[Any] = []
    gate = asyncio.Event()

    async def body() -> AsyncIterator[bytes]:
        yield b"first"
        await gate.wait()
        yield b"second"

    async def send(message: dict[str, Any]) -> None:
        events.append(message.get("body", message["type"]))

    ctx = RequestContext(after_response=[])
    ctx.defer(lambda: events.append("deferred"))
    task = asyncio.ensure_future(_StreamThenWork(ctx, body(), []).send(send, _never_disconnect))
    asyncio.get_running_loop().call_soon(events.append, "loop turn")
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert events[:3] == ["http.response.start", b"first", "loop turn"]
    gate.set()
    await asyncio.wait_for(task, 5)
    assert b"second" in events
    # The request's deferred work still runs once the last byte is out.
    assert events[-1] == "deferred" and events.index(b"second") < events.index("deferred")


async def test_a_body_failing_on_its_first_piece_is_closed_and_its_work_runs() -> None:
    closed: list[bool] = []
    ran: list[bool] = []

    class Failing:
        def __aiter__(self) -> Failing:
            return self

        async def __anext__(self) -> bytes:
            raise RuntimeError("broken body")

        async def aclose(self) -> None:
            closed.append(True)

    async def send(message: dict[str, Any]) -> None:
        pass

    ctx = RequestContext(after_response=[])
    ctx.defer(lambda: ran.append(True))
    with pytest.raises(RuntimeError, match="broken body"):
        await _StreamThenWork(ctx, Failing(), []).send(send, _never_disconnect)
    assert closed == [True] and ran == [True]


async def test_an_empty_body_still_ends_the_response() -> None:
    messages: list[dict[str, Any]] = []

    async def body() -> AsyncIterator[bytes]:
        return
        yield b""  # pragma: no cover - makes this an async generator

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    await asyncio.wait_for(_StreamThenWork(RequestContext(after_response=[]), body(), []).send(send, _never_disconnect), 5)
    assert messages[0]["type"] == "http.response.start"
    assert messages[-1] == {"type": "http.response.body", "body": b"", "more_body": False}
