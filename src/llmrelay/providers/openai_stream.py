"""Decoding a streamed Chat Completions answer (SSE) into chunks.

    >>> dec = OpenAIStreamDecoder("openai")
    >>> lines = [b'data: {"id":"c1","model":"m","choices":[{"index":0,"delta":{"content":"Hi"}}]}', b"",
    ...          b'data: {"id":"c1","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}', b"",
    ...          b"data: [DONE]", b""]
    >>> [c.text or c.finish_reason for line in lines for c in dec.feed(line)]
    ['Hi', 'stop']

Text, reasoning and tool-call deltas are yielded as they arrive. The finish reason is held back
until the usage chunk (``stream_options.include_usage``) or ``[DONE]``, so the last chunk carries
both, as the Chunk contract asks, and so an error event after the finish reason (OpenRouter sends
those) still fails the stream instead of ending it cleanly.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import orjson

from ..errors import ProviderError, StreamInterruptedError
from ..streaming import SSEDecoder, SSEEvent
from ..types import Chunk, FinishReason, ToolCallDelta, Usage
from .openai_errors import error_from_payload
from .openai_wire import arguments_text, finish_reason, reasoning_of, split_content, usage_from_wire

# What a line that completes no event gives (most lines: every event's data line).
_NOTHING: tuple[Chunk, ...] = ()


class OpenAIStreamDecoder:
    """One streamed answer's decoder; ``provider`` names the upstream in the errors it raises.

    It takes each event's data as bytes (:meth:`SSEDecoder.feed_data`): a well-formed event is
    parsed from the bytes it came in, with no decode, no SSEEvent and no generator per line. An event whose bytes
    do not parse (invalid UTF-8, Unicode spaces around it, not JSON) takes the text path, which
    reads it exactly as an SSEDecoder's event."""

    __slots__ = ("_done", "_finish", "_first", "_had_calls", "_provider", "_seen", "_sse", "_usage")
    # ``_finish`` and ``_had_calls`` are per choice index (``n > 1`` answers interleave their deltas).

    def __init__(self, provider: str | None = None) -> None:
        self._provider = provider
        self._sse = SSEDecoder()
        self._finish: dict[int, FinishReason] = {}
        self._usage: Usage | None = None
        self._first = True
        self._seen = False
        self._done = False
        self._had_calls: set[int] = set()

    def feed(self, line: bytes) -> Iterator[Chunk]:
        done = self._sse.feed_data(line)
        if done is None:  # most lines: every event's data line
            return iter(_NOTHING)
        return iter(self._dispatch(*done))

    def close(self) -> Iterator[Chunk]:
        # An event not followed by a blank line still counts (SSEDecoder.flush).
        yield from self.feed(b"")
        if self._done:
            return
        if self._finish:
            # Some compatible servers end the body after the finish chunk without [DONE].
            yield from self._end()
            return
        what = "an empty stream" if not self._seen else "the stream ended before the answer finished"
        raise StreamInterruptedError(f"the upstream sent {what}", provider=self._provider)

    # ---- internals -----------------------------------------------------------------------------

    def _dispatch(self, event: str | None, raw: bytes) -> list[Chunk] | tuple[Chunk, ...]:
        data = raw.strip()
        if not data or self._done:  # ASCII spaces only: empty as text too
            return _NOTHING
        if data == b"[DONE]":
            return list(self._end())
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError:
            return self._event(SSEEvent(event, raw.decode("utf-8", errors="replace")))
        # Parsed from bytes: valid UTF-8 with no Unicode space around it, so the text is the same.
        self._seen = True
        if event == "error" or (isinstance(payload, Mapping) and payload.get("error")):
            raise error_from_payload(payload, None, provider=self._provider)
        return self._chunk(payload)

    def _event(self, event: SSEEvent) -> list[Chunk] | tuple[Chunk, ...]:
        data = event.data.strip()
        if not data or self._done:
            return _NOTHING
        if data == "[DONE]":
            return list(self._end())
        self._seen = True
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError:
            if event.event == "error":
                raise ProviderError(f"the upstream sent an error event: {data[:300]}", provider=self._provider) from None
            raise StreamInterruptedError(
                f"the upstream sent a malformed stream event ({data[:120]!r})", provider=self._provider
            ) from None
        if event.event == "error" or (isinstance(payload, Mapping) and payload.get("error")):
            raise error_from_payload(payload, None, provider=self._provider)
        return self._chunk(payload)

    def _chunk(self, payload: Mapping[str, Any]) -> list[Chunk]:
        usage = payload.get("usage") or (payload.get("x_groq") or {}).get("usage")
        if usage:
            self._usage = usage_from_wire(usage)
        ident: dict[str, Any] = {}
        if self._first:
            self._first = False
            ident = {"id": payload.get("id"), "model": payload.get("model")}
        out: list[Chunk] = []
        for choice in payload.get("choices") or ():
            chunk = self._choice(choice, ident)
            if chunk is not None:
                out.append(chunk)
            ident = {}
        if ident:
            out.append(Chunk(**ident))
        return out

    def _choice(self, choice: Mapping[str, Any], ident: dict[str, Any]) -> Chunk | None:
        index = choice.get("index")
        index = index if isinstance(index, int) else 0
        delta = choice.get("delta") or {}
        if len(delta) == 1 and not ident:
            # Text alone (most events): no reasoning or calls to look for.
            content = delta.get("content")
            if type(content) is str:
                finish = finish_reason(choice.get("finish_reason"))
                if finish is not None:
                    self._finish[index] = finish
                return Chunk(content, choice=index) if content else None
        text, thinking = split_content(delta.get("content"))
        reasoning = reasoning_of(delta) or thinking
        raw_calls = delta.get("tool_calls")
        calls: tuple[ToolCallDelta, ...] = ()
        if raw_calls:
            calls = tuple(self._call(i, c) for i, c in enumerate(raw_calls))
            self._had_calls.add(index)
        finish = finish_reason(choice.get("finish_reason"))
        if finish is not None:
            self._finish[index] = finish
        if text or reasoning or calls or ident:
            return Chunk(text=text, reasoning=reasoning, tool_calls=calls, choice=index, **ident)
        return None

    @staticmethod
    def _call(position: int, raw: Mapping[str, Any]) -> ToolCallDelta:
        fn = raw.get("function") or {}
        index = raw.get("index")
        return ToolCallDelta(
            # Some servers omit the index (one call per chunk) or send empty ids (Gemini's endpoint).
            index=index if isinstance(index, int) else position,
            id=raw.get("id") or None,
            name=fn.get("name") or None,
            arguments=arguments_text(fn.get("arguments")),
        )

    def _end(self) -> Iterator[Chunk]:
        self._done = True
        # The other choices' finish first: the last chunk (choice 0's) carries the usage.
        for index in sorted(i for i in self._finish if i):
            yield Chunk(choice=index, finish_reason=self._final(index))
        yield Chunk(finish_reason=self._final(0), usage=self._usage)

    def _final(self, index: int) -> FinishReason:
        finish = self._finish.get(index) or "stop"
        if index in self._had_calls and finish == "stop":
            finish = "tool_calls"  # some servers say "stop" after a tool call
        return finish
