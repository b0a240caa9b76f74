"""Fan one upstream answer out to every caller that asked the same question while it was running.

A :class:`Flight` is one upstream call. Its chunks are *published* by a pump task that runs apart
from every caller, so a caller that goes away (the first one included) never cancels the call
for the others; the pump is cancelled only when nobody is left to read it.

Each caller is a :class:`Subscriber` with its own bounded buffer (``buffer_chunks``). The pump
keeps backpressure: it reads the upstream only while some attached reader has room, so a lone
slow reader slows the upstream to its pace, exactly as without dedup. A reader whose buffer is
full is *detached* only while another reader keeps up (its position in the answer is remembered):
the fast one is not held back by it. A detached reader that has drained its buffer is given the
rest so far as one chunk assembled from the flight's progress and follows live again (or, if the
upstream finished meanwhile, gets the rest at the end). So memory stays bounded: the flight holds
the answer once, plus at most ``buffer_chunks`` chunks per reader.
A caller that joins late first gets everything said so far as one catch-up chunk.

    flight = Flight(buffer_chunks=256)
    sub = flight.join()
    flight.publish(Chunk(text="Hi"))
    flight.finish()
    [c.text async for c in flight.read(sub)]     # -> ["Hi"]
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from ..types import Chunk, FinishReason, ToolCallDelta, Usage
from .decoded import FlightAnswer


@dataclass(frozen=True, slots=True)
class Mark:
    """How much of the answer a reader has been given."""

    text: int = 0
    reasoning: int = 0
    # Per tool-call index: characters of arguments given (an index present means id/name given).
    args: dict[int, int] = field(default_factory=dict)
    head: bool = False
    # The thinking signature given (it may arrive after the reasoning it signs).
    signature: str | None = None


_START = Mark()


class Progress:
    """The answer so far, kept once per flight (what a late or detached reader is caught up with)."""

    __slots__ = ("_calls", "_reasoning", "_reasoning_len", "_text", "_text_len", "added", "finish_reason", "id",
                 "model", "signature", "usage")

    def __init__(self) -> None:
        self._text: list[str] = []
        self._reasoning: list[str] = []
        # Running lengths, so taking a mark (on every detach) does not walk the whole answer.
        self._text_len = self._reasoning_len = 0
        self._calls: dict[int, list[str]] = {}  # index -> [id, name, arguments]
        self.id: str | None = None
        self.model: str | None = None
        self.signature: str | None = None
        self.finish_reason: FinishReason | None = None
        self.usage: Usage | None = None
        # Chunks added so far: none means there is nothing to catch a reader up with.
        self.added = 0

    def add(self, c: Chunk) -> None:
        self.added += 1
        if c.text:
            self._text.append(c.text)
            self._text_len += len(c.text)
        if c.reasoning:
            self._reasoning.append(c.reasoning)
            self._reasoning_len += len(c.reasoning)
        for d in c.tool_calls:
            call = self._calls.setdefault(d.index, ["", "", ""])
            call[0], call[1] = call[0] or d.id or "", call[1] or d.name or ""
            call[2] += d.arguments
        self.id, self.model = self.id or c.id, self.model or c.model
        self.signature = c.reasoning_signature or self.signature
        self.finish_reason = c.finish_reason or self.finish_reason
        self.usage = c.usage or self.usage

    def mark(self) -> Mark:
        return Mark(self._text_len, self._reasoning_len,
                    {i: len(c[2]) for i, c in self._calls.items()}, self.id is not None or self.model is not None,
                    self.signature)

    def since(self, mark: Mark) -> Chunk | None:
        """Everything after ``mark`` as one chunk (with the finish reason and usage once known)."""
        # Joined once and kept joined: a reader catching up again later does not re-join the pieces.
        self._text = [joined] if (joined := "".join(self._text)) else []
        self._reasoning = [thought] if (thought := "".join(self._reasoning)) else []
        text, reasoning = joined[mark.text:], thought[mark.reasoning:]
        calls = tuple(
            ToolCallDelta(index=i, id=None if i in mark.args else c[0] or None,
                          name=None if i in mark.args else c[1] or None, arguments=c[2][mark.args.get(i, 0):])
            for i, c in sorted(self._calls.items())
            if i not in mark.args or len(c[2]) > mark.args[i]
        )
        head = not mark.head
        chunk = Chunk(text=text, reasoning=reasoning, tool_calls=calls, finish_reason=self.finish_reason,
                      usage=self.usage, id=self.id if head else None, model=self.model if head else None,
                      reasoning_signature=self.signature if self.signature != mark.signature else None)
        empty = not (text or reasoning or calls or chunk.finish_reason or chunk.usage or chunk.id or chunk.model
                     or chunk.reasoning_signature)
        return None if empty else chunk


class Subscriber:
    __slots__ = ("buffer", "detached_at", "wake")

    def __init__(self) -> None:
        self.buffer: deque[Chunk] = deque()
        self.wake = asyncio.Event()
        # Set when the buffer overflowed: the reader gets the rest once the flight is done.
        self.detached_at: Mark | None = None


class Flight:
    def __init__(self, buffer_chunks: int) -> None:
        self.limit = buffer_chunks
        self.progress = Progress()
        self.subscribers: list[Subscriber] = []
        self.done = False
        self.error: BaseException | None = None
        self.task: asyncio.Task[None] | None = None
        # Set whenever a reader may have made room; the pump waits on it (backpressure).
        self._room = asyncio.Event()
        # Owned by the dedup layer: the context the upstream call runs with, and who pays for it.
        self.context: Any = None
        self.payer: Subscriber | None = None
        # The first chunk published, kept for edges that render it once for every caller.
        self.answer = FlightAnswer()

    def join(self) -> Subscriber:
        sub = Subscriber()
        # Most callers join before the first chunk (they arrive while the upstream thinks):
        # nothing to catch up with, and since() would join and wrap empty lists for nothing.
        if self.progress.added:
            catch_up = self.progress.since(_START)
            if catch_up is not None:
                sub.buffer.append(catch_up)
        self.subscribers.append(sub)
        return sub

    def leave(self, sub: Subscriber) -> bool:
        """Forget a reader; True when nobody is left (the caller may then cancel the pump)."""
        if sub in self.subscribers:
            self.subscribers.remove(sub)
        self._room.set()
        return not self.subscribers

    def has_room(self) -> bool:
        """Whether some attached reader can take another chunk now."""
        return any(s.detached_at is None and len(s.buffer) < self.limit for s in self.subscribers)

    async def wait_for_room(self) -> None:
        """Hold the upstream while every attached reader's buffer is full (the pump calls this)."""
        while self.subscribers and not self.has_room():
            self._room.clear()
            await self._room.wait()

    def publish(self, chunk: Chunk) -> None:
        # A full reader is detached only while another keeps up; when nobody keeps up it takes the
        # chunk over its limit (by one at most: the pump then waits for room before reading on).
        keeping_up = self.has_room()
        mark: Mark | None = None
        for sub in self.subscribers:
            if sub.detached_at is not None:
                continue
            if len(sub.buffer) >= self.limit and keeping_up:
                sub.detached_at = mark = mark or self.progress.mark()
                continue
            sub.buffer.append(chunk)
            sub.wake.set()
        self.progress.add(chunk)
        if self.answer.first is None:
            self.answer.first = chunk

    def finish(self, error: BaseException | None = None) -> None:
        self.done, self.error = True, error
        for sub in self.subscribers:
            sub.wake.set()

    async def read(self, sub: Subscriber) -> AsyncIterator[Chunk]:
        """The chunks for one reader: its buffer; once drained, a detached reader gets what it missed
        as one chunk and follows live again (or gets the rest at the end if the flight is done)."""
        while True:
            while sub.buffer:
                chunk = sub.buffer.popleft()
                self._room.set()
                yield chunk
            if self.done:
                if sub.detached_at is not None:
                    rest = self.progress.since(sub.detached_at)
                    if rest is not None:
                        yield rest
                if self.error is not None:
                    raise self.error
                return
            if sub.detached_at is not None:
                missed, sub.detached_at = self.progress.since(sub.detached_at), None
                self._room.set()
                if missed is not None:
                    yield missed
                continue
            sub.wake.clear()
            await sub.wake.wait()
