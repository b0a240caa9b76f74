"""StreamResponse's writes: pieces ready together go out in one write, nothing waits on the body.

The body is a plain async generator driven by events the test controls, and ``send`` records each
ASGI message, so the grouping is seen exactly as uvicorn would see it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from llmrelay.server._asgi import COALESCE_BYTES, COALESCE_PIECES, StreamResponse


class Recorder:
    """An ASGI ``send`` that keeps the body messages; ``gate`` (when set) makes body writes wait."""

    def __init__(self, gate_after: int | None = None) -> None:
        self.bodies: list[tuple[bytes, bool]] = []
        self.gate = asyncio.Event()
        self.gate_after = gate_after  # body writes after this many wait on `gate`
        self.writing = 0

    async def __call__(self, message: dict[str, Any]) -> None:
        if message["type"] != "http.response.body":
            return
        if self.gate_after is not None and len(self.bodies) >= self.gate_after:
            self.writing += 1
            await self.gate.wait()
        self.bodies.append((message["body"], message["more_body"]))

    @property
    def data(self) -> bytes:
        return b"".join(b for b, _ in self.bodies)


async def _never_disconnect() -> dict[str, Any]:
    await asyncio.Event().wait()
    return {"type": "http.disconnect"}


async def _bursts(*bursts: list[bytes], waits: list[asyncio.Event]) -> AsyncIterator[bytes]:
    """Yields each burst's pieces back to back, waiting on the next event between bursts."""
    for i, burst in enumerate(bursts):
        if i:
            await waits[i - 1].wait()
        for piece in burst:
            yield piece


async def test_first_piece_alone_then_ready_pieces_joined() -> None:
    burst = [b"data: %d\n\n" % i for i in range(5)]
    rec = Recorder()
    await StreamResponse(_bursts(burst, waits=[])).send(rec, _never_disconnect)
    assert rec.data == b"".join(burst)
    # The first piece at once (time to first chunk), the other four with the end of the body.
    assert rec.bodies == [(burst[0], True), (b"".join(burst[1:]), False)]


async def test_nothing_is_held_back_while_the_body_waits() -> None:
    first, second = [b"a", b"b", b"c"], [b"d", b"e"]
    resume = asyncio.Event()
    rec = Recorder()
    task = asyncio.ensure_future(StreamResponse(_bursts(first, second, waits=[resume])).send(rec, _never_disconnect))
    for _ in range(20):
        await asyncio.sleep(0)
    # The body is waiting on `resume`: everything it produced so far has been written.
    assert rec.data == b"abc" and not task.done()
    resume.set()
    await task
    assert rec.data == b"abcde"
    assert rec.bodies[-1] == (b"de", False)


async def test_a_long_burst_is_written_in_bounded_steps() -> None:
    burst = [b"x" * 10 for _ in range(COALESCE_PIECES * 3 + 1)]
    rec = Recorder()
    await StreamResponse(_bursts(burst, waits=[])).send(rec, _never_disconnect)
    assert rec.data == b"".join(burst)
    assert max(len(b) for b, _ in rec.bodies) <= COALESCE_PIECES * 10
    big = [b"y" * (COALESCE_BYTES // 2 + 1)] * 4
    rec = Recorder()
    await StreamResponse(_bursts(big, waits=[])).send(rec, _never_disconnect)
    assert rec.data == b"".join(big)
    assert all(len(b) <= COALESCE_BYTES + len(big[0]) for b, _ in rec.bodies)
    assert len(rec.bodies) >= 3


async def test_empty_pieces_and_empty_body() -> None:
    rec = Recorder()
    await StreamResponse(_bursts([b"", b"a", b"", b"b"], waits=[])).send(rec, _never_disconnect)
    assert rec.data == b"ab" and rec.bodies[-1][1] is False
    rec = Recorder()
    await StreamResponse(_bursts(waits=[])).send(rec, _never_disconnect)
    assert rec.bodies == [(b"", False)]


async def test_cancel_while_the_body_waits_reaches_the_body() -> None:
    seen: list[str] = []
    never = asyncio.Event()

    async def body() -> AsyncIterator[bytes]:
        try:
            yield b"a"
            yield b"b"
            await never.wait()
            yield b"c"
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise
        finally:
            await asyncio.sleep(0)  # clean-up that awaits still runs to its end
            seen.append("closed")

    rec = Recorder()
    task = asyncio.ensure_future(StreamResponse(body()).send(rec, _never_disconnect))
    for _ in range(20):
        await asyncio.sleep(0)
    assert rec.data == b"ab"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert seen == ["cancelled", "closed"]


async def test_cancel_while_a_joined_write_waits_reaches_the_waiting_body() -> None:
    """The joined pieces are written just before the body waits; a cancel during that write
    must still end the body (its upstream call), as it would have had it been awaited."""
    seen: list[str] = []
    never = asyncio.Event()

    async def body() -> AsyncIterator[bytes]:
        try:
            yield b"a"
            yield b"b"
            yield b"c"
            await never.wait()
            yield b"d"
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise
        finally:
            seen.append("closed")

    rec = Recorder(gate_after=1)
    task = asyncio.ensure_future(StreamResponse(body()).send(rec, _never_disconnect))
    for _ in range(20):
        await asyncio.sleep(0)
    # The first piece went out; "bc" is being written (blocked) while the body waits.
    assert rec.data == b"a" and rec.writing == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert seen == ["cancelled", "closed"]


async def test_a_body_error_propagates_after_what_was_produced() -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b"a"
        yield b"b"
        raise ValueError("boom")

    rec = Recorder()
    with pytest.raises(ValueError, match="boom"):
        await StreamResponse(body()).send(rec, _never_disconnect)
    assert rec.data == b"a"


async def test_client_gone_while_waiting_closes_the_body_and_calls_back() -> None:
    never = asyncio.Event()
    closed: list[bool] = []
    gone: list[bool] = []

    async def body() -> AsyncIterator[bytes]:
        try:
            yield b"a"
            await never.wait()
            yield b"b"
        finally:
            closed.append(True)

    disconnect = asyncio.Event()

    async def receive() -> dict[str, Any]:
        await disconnect.wait()
        return {"type": "http.disconnect"}

    rec = Recorder()
    task = asyncio.ensure_future(StreamResponse(body(), on_disconnect=lambda: gone.append(True)).send(rec, receive))
    for _ in range(10):
        await asyncio.sleep(0)
    disconnect.set()
    await task
    assert rec.data == b"a" and closed == [True] and gone == [True]
