"""Streams: Server-Sent Events and newline-delimited JSON codecs, and assembly of chunk deltas.

Decoders are incremental and pure: feed them lines, get events back. They are shared by the provider
adapters (decoding upstream streams), the server edges (encoding) and the simulator.

    >>> dec = SSEDecoder()
    >>> list(dec.feed(b"event: ping")), list(dec.feed(b'data: {"a": 1}')), list(dec.feed(b""))
    ([], [], [SSEEvent(event='ping', data='{"a": 1}', id=None)])
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import orjson

from .types import ChatRequest, ChatResult, Choice, Chunk, FinishReason, ToolCall, Usage


@dataclass(frozen=True, slots=True)
class SSEEvent:
    event: str | None
    data: str
    id: str | None = None

    def json(self) -> Any:
        return orjson.loads(self.data)


class SSEDecoder:
    """Incremental SSE decoder following the WHATWG rules (multi-line data, comments, ids)."""

    __slots__ = ("_data", "_event", "_id")

    def __init__(self) -> None:
        self._event: str | None = None
        self._data: list[bytes] = []
        self._id: str | None = None

    def feed(self, line: bytes) -> Iterator[SSEEvent]:
        done = self.feed_data(line)
        if done is not None:
            yield SSEEvent(done[0], done[1].decode("utf-8", errors="replace"), self._id)

    def feed_data(self, line: bytes) -> tuple[str | None, bytes] | None:
        """The bytes-level step of :meth:`feed`: ``(event name, data)`` when ``line`` (a blank one)
        completes an event, else None. The data stays the bytes it came in (the lines joined by
        ``\n``), so a decoder that parses JSON from bytes needs no decode and no SSEEvent; decoded
        with ``errors="replace"`` it is the SSEEvent's data."""
        if line:
            if line.startswith(b"data:"):  # nearly every line: no decode
                self._data.append(line[6:] if line[5:6] == b" " else line[5:])
            elif line[:1] != b":":  # not a comment
                self._field(line)
            return None
        data, event = self._data, self._event
        self._event, self._data = None, []
        if not data:
            return None
        return event, data[0] if len(data) == 1 else b"\n".join(data)

    def _field(self, line: bytes) -> None:
        name, sep, value = line.decode("utf-8", errors="replace").partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "data":  # "data" alone: an empty data line
            self._data.append(value.encode())
        elif name == "event":
            self._event = value
        elif name == "id":
            self._id = value

    def flush(self) -> Iterator[SSEEvent]:
        """Emit a final event that was not followed by a blank line."""
        yield from self.feed(b"")


async def aiter_sse(lines: AsyncIterator[bytes]) -> AsyncIterator[SSEEvent]:
    dec = SSEDecoder()
    async for line in lines:
        for ev in dec.feed(line):
            yield ev
    for ev in dec.flush():
        yield ev


def encode_sse(data: bytes | str, event: str | None = None, id: str | None = None) -> bytes:
    """One SSE event as bytes; ``data`` must not contain newlines (JSON from orjson never does)."""
    if isinstance(data, str):
        data = data.encode()
    head = b""
    if id is not None:
        head += b"id: " + id.encode() + b"\n"
    if event is not None:
        head += b"event: " + event.encode() + b"\n"
    return head + b"data: " + data + b"\n\n"


def encode_sse_json(obj: Any, event: str | None = None, id: str | None = None) -> bytes:
    return encode_sse(orjson.dumps(obj), event, id)


async def aiter_ndjson(lines: AsyncIterator[bytes]) -> AsyncIterator[Any]:
    async for line in lines:
        line = line.strip()
        if line:
            yield orjson.loads(line)


# ------------------------------------------------------------------------------------ assembly


class Assembler:
    """Folds a stream of chunks into a :class:`ChatResult`, identical to the non-streamed answer.

    Tool-call argument fragments are appended per ``index`` so several interleaved calls assemble
    correctly. ``add`` is cheap enough to call on the hot path for every chunk.

        >>> asm = Assembler()
        >>> asm.add(Chunk(text="Hi"))
        >>> asm.add(Chunk(text=" there", finish_reason="stop", usage=Usage(input_tokens=3, output_tokens=2)))
        >>> asm.result().text
        'Hi there'
    """

    __slots__ = ("_calls", "_choices", "_reasoning", "_signature", "_text", "finish_reason", "id", "model", "usage")

    def __init__(self) -> None:
        self._text: list[str] = []
        self._reasoning: list[str] = []
        self._signature: str | None = None
        self._calls: dict[int, list[str | None]] = {}
        self.finish_reason: FinishReason | None = None
        self.usage: Usage | None = None
        self.id: str | None = None
        self.model: str | None = None
        # The answers after the first (``n > 1``), each folded by its own assembler.
        self._choices: dict[int, Assembler] | None = None

    def _add_choice(self, chunk: Chunk) -> None:
        if self._choices is None:
            self._choices = {}
        sub = self._choices.get(chunk.choice)
        if sub is None:
            sub = self._choices[chunk.choice] = Assembler()
        sub.add(replace(chunk, choice=0))
        self._note_meta(chunk)

    def _note_meta(self, chunk: Chunk) -> None:
        """What every choice's chunks tell about the whole answer: usage, id, model."""
        if chunk.usage is not None:
            self.usage = chunk.usage
        if chunk.id and not self.id:
            self.id = chunk.id
        if chunk.model and not self.model:
            self.model = chunk.model

    def _all_choices(self, first: ChatResult) -> tuple[Choice, ...]:
        if not self._choices:
            return ()
        last = max(self._choices)
        subs = [self._choices.get(i) for i in range(1, last + 1)]
        results = [first, *(s.result() if s is not None else ChatResult(id="", model="") for s in subs)]
        return tuple(replace(r.all_choices()[0], index=i) for i, r in enumerate(results))

    def add(self, chunk: Chunk) -> None:
        if chunk.choice:
            self._add_choice(chunk)
            return
        if chunk.text:
            self._text.append(chunk.text)
        if chunk.reasoning:
            self._reasoning.append(chunk.reasoning)
        if chunk.reasoning_signature:
            self._signature = chunk.reasoning_signature
        for d in chunk.tool_calls:
            call = self._calls.get(d.index)
            if call is None:
                call = self._calls[d.index] = [d.id, d.name, ""]
            else:
                if d.id and not call[0]:
                    call[0] = d.id
                if d.name and not call[1]:
                    call[1] = d.name
            if d.arguments:
                call[2] = (call[2] or "") + d.arguments
        if chunk.finish_reason:
            self.finish_reason = chunk.finish_reason
        self._note_meta(chunk)

    @property
    def text(self) -> str:
        return "".join(self._text)

    @property
    def has_partial_tool_call(self) -> bool:
        return bool(self._calls)

    def tool_calls(self) -> tuple[ToolCall, ...]:
        return tuple(
            ToolCall(id=c[0] or f"call_{i}", name=c[1] or "", arguments=c[2] or "{}")
            for i, c in sorted(self._calls.items())
        )

    def result(self, provider: str | None = None) -> ChatResult:
        calls = self.tool_calls()
        finish = self.finish_reason or "stop"
        if calls and finish == "stop":
            finish = "tool_calls"
        result = ChatResult(
            id=self.id or "",
            model=self.model or "",
            text=self.text,
            tool_calls=calls,
            finish_reason=finish,
            usage=self.usage or Usage(),
            reasoning="".join(self._reasoning),
            reasoning_signature=self._signature,
            provider=provider,
        )
        return replace(result, choices=self._all_choices(result)) if self._choices else result


# ------------------------------------------------------------------------- stream bookkeeping

T = TypeVar("T")


@contextlib.asynccontextmanager
async def closing(stream: AsyncIterator[T]) -> AsyncIterator[AsyncIterator[T]]:
    """Close ``stream`` on exit, so an abandoned stream reaches the upstream response at once
    instead of when the garbage collector finalizes the generator chain."""
    try:
        yield stream
    finally:
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            await aclose()


# Characters per token for estimates made when an upstream never reported its usage (a cut or
# cancelled stream). English prose with today's tokenizers runs at 3.5-4.5; the ledger marks such
# rows as estimated (``ctx.notes["usage_estimated"]``), so the figure only has to be close.
CHARS_PER_TOKEN = 4


def has_content(chunk: Chunk) -> bool:
    """Whether a chunk carries part of the answer (not only ids, a role or a finish marker)."""
    return bool(chunk.text or chunk.reasoning or chunk.tool_calls)


def content_chars(chunk: Chunk) -> int:
    chars = len(chunk.text) + len(chunk.reasoning)
    if chunk.tool_calls:  # most chunks have none: no generator per chunk
        chars += sum(len(d.arguments) + len(d.name or "") for d in chunk.tool_calls)
    return chars


def tokens_for_chars(chars: int) -> int:
    """An estimate of the tokens in ``chars`` characters of output: at least 1 when there is any."""
    return 0 if chars <= 0 else max(1, -(-chars // CHARS_PER_TOKEN))


def estimate_usage(request: ChatRequest, output_chars: int) -> Usage:
    """Usage for a call whose upstream never said: the prompt's and the output's size over
    :data:`CHARS_PER_TOKEN` (plus a few tokens of framing per message, as every chat API counts)."""
    chars = sum(len(m.text()) + sum(len(c.arguments) + len(c.name) for c in m.tool_calls) for m in request.messages)
    chars += sum(len(t.name) + len(t.description or "") + len(orjson.dumps(dict(t.parameters))) for t in request.tools)
    return Usage(input_tokens=tokens_for_chars(chars) + 3 * len(request.messages), output_tokens=tokens_for_chars(output_chars))
