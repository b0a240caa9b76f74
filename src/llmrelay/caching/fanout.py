"""Fan one upstream answer out to every caller that asked the same question while it was running.

A :class:`Flight` is one upstream call. Its chunks are *published* by a pump task that runs apart
from every caller, so a caller that goes away (the first one included) never cancels the call
for the others; the pump is cancelled only when nobody is left to read it.

Each caller is a :class:`Subscriber` with its own bounded buffer (``buffer_chunks``). Publishing
never waits for a reader: when a reader's buffer is full it is *detached* (its position in the
answer is remembered) and, once the upstream finishes, it is given the rest of the answer as one
chunk assembled from the flight's progress. So a slow reader neither stalls the others nor makes
memory grow: the flight holds the answer once, plus at most ``buffer_chunks`` chunks per reader.
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


@dataclass(frozen=True, slots=True)
class Mark:
    """How much of the answer a reader has been given."""

    text: int = 0
    reasoning: int = 0
    # Per tool-call index: characters of arguments given (an index present means id/name given).
    args: dict[int, int] = field(default_factory=dict)
    head: bool = False


_START = Mark()


class Progress:
    """The answer so far, kept once per flight (what a late or detached reader is caught up with)."""

    __slots__ = ("_calls", "_reasoning", "_text", "finish_reason", "id", "model", "signature", "usage")

    def __init__(self) -> None:
        self._text: list[str] = []
        self._reasoning: list[str] = []
        self._calls: dict[int, list[str]] = {}  # index -> [id, name, arguments]
        self.id: str | None = None
        self.model: str | None = None
        self.signature: str | None = None
        self.finish_reason: FinishReason | None = None
        self.usage: Usage | None = None

    def add(self, c: Chunk) -> None:
        if c.text:
            self._text.append(c.text)
        if c.reasoning:
            self._reasoning.append(c.reasoning)
        for d in c.tool_calls:
            call = self._calls.setdefault(d.index, ["", "", ""])
            call[0], call[1] = call[0] or d.id or "", call[1] or d.name or ""
            call[2] += d.arguments
        self.id, self.model = self.id or c.id, self.model or c.model
        self.signature = c.reasoning_signature or self.signature
        self.finish_reason = c.finish_reason or self.finish_reason
        self.usage = c.usage or self.usage

    def mark(self) -> Mark:
        return Mark(sum(map(len, self._text)), sum(map(len, self._reasoning)),
                    {i: len(c[2]) for i, c in self._calls.items()}, self.id is not None or self.model is not None)

    def since(self, mark: Mark) -> Chunk | None:
        """Everything after ``mark`` as one chunk (with the finish reason and usage once known)."""
        text = "".join(self._text)[mark.text:]
        reasoning = "".join(self._reasoning)[mark.reasoning:]
        calls = tuple(
            ToolCallDelta(index=i, id=None if i in mark.args else c[0] or None,
                          name=None if i in mark.args else c[1] or None, arguments=c[2][mark.args.get(i, 0):])
            for i, c in sorted(self._calls.items())
            if i not in mark.args or len(c[2]) > mark.args[i]
        )
        head = not mark.head
        chunk = Chunk(text=text, reasoning=reasoning, tool_calls=calls, finish_reason=self.finish_reason,
                      usage=self.usage, id=self.id if head else None, model=self.model if head else None,
                      reasoning_signature=self.signature if reasoning else None)
        empty = not (text or reasoning or calls or chunk.finish_reason or chunk.usage or chunk.id or chunk.model)
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
        # Owned by the dedup layer: the context the upstream call runs with, and who pays for it.
        self.context: Any = None
        self.payer: Subscriber | None = None

    def join(self) -> Subscriber:
        sub = Subscriber()
        catch_up = self.progress.since(_START)
        if catch_up is not None:
            sub.buffer.append(catch_up)
        self.subscribers.append(sub)
        return sub

    def leave(self, sub: Subscriber) -> bool:
        """Forget a reader; True when nobody is left (the caller may then cancel the pump)."""
        if sub in self.subscribers:
            self.subscribers.remove(sub)
        return not self.subscribers

    def publish(self, chunk: Chunk) -> None:
        mark: Mark | None = None
        for sub in self.subscribers:
            if sub.detached_at is not None:
                continue
            if len(sub.buffer) >= self.limit:
                sub.detached_at = mark = mark or self.progress.mark()
                continue
            sub.buffer.append(chunk)
            sub.wake.set()
        self.progress.add(chunk)

    def finish(self, error: BaseException | None = None) -> None:
        self.done, self.error = True, error
        for sub in self.subscribers:
            sub.wake.set()

    async def read(self, sub: Subscriber) -> AsyncIterator[Chunk]:
        """The chunks for one reader: its buffer, then (if it was detached) the rest at the end."""
        while True:
            while sub.buffer:
                yield sub.buffer.popleft()
            if self.done:
                if sub.detached_at is not None:
                    rest = self.progress.since(sub.detached_at)
                    if rest is not None:
                        yield rest
                if self.error is not None:
                    raise self.error
                return
            sub.wake.clear()
            await sub.wake.wait()
