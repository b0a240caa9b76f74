"""Anthropic Messages answers -> ChatResult / Chunk, for whole bodies and for SSE streams.

    >>> body = {"id": "msg_1", "model": "claude-haiku-4-5", "stop_reason": "end_turn",
    ...         "content": [{"type": "text", "text": "Hi"}],
    ...         "usage": {"input_tokens": 5, "cache_read_input_tokens": 10, "output_tokens": 2}}
    >>> r = result_from_body(body)
    >>> r.text, r.finish_reason, r.usage.input_tokens
    ('Hi', 'stop', 15)

Server-side tool blocks (web search, code execution, MCP, advisor...) are executed by Anthropic:
they are not tool calls for the client, so they are skipped; the text around them is kept.

Thinking: one signed thinking block is returned as ``reasoning`` + ``reasoning_signature``. When a
turn has several thinking blocks or redacted ones, which one signature cannot carry, the signature
is an envelope (``THINKING_ENVELOPE`` + base64 JSON of the blocks) that ``anthropic_wire`` unpacks
verbatim when the turn is sent back. The signature is opaque to everything else, so this is safe.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from ..errors import LLMRelayError, StreamInterruptedError
from ..streaming import SSEDecoder
from ..types import ChatResult, Chunk, FinishReason, ToolCall, ToolCallDelta, Usage
from .anthropic_wire import JSON_TOOL, THINKING_ENVELOPE

STOP_REASONS: Mapping[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def finish_reason(stop_reason: str | None) -> FinishReason:
    return STOP_REASONS.get(stop_reason or "end_turn", "stop")


def usage_from(raw: Mapping[str, Any] | None) -> Usage:
    """Anthropic usage -> OpenAI semantics: cache reads and writes are part of the input."""
    if not raw:
        return Usage()
    uncached = int(raw.get("input_tokens") or 0)
    read = int(raw.get("cache_read_input_tokens") or 0)
    write = int(raw.get("cache_creation_input_tokens") or 0)
    creation = raw.get("cache_creation") or {}
    details = raw.get("output_tokens_details") or {}
    return Usage(
        input_tokens=uncached + read + write,
        output_tokens=int(raw.get("output_tokens") or 0),
        cache_read_tokens=read,
        cache_write_tokens=write,
        cache_write_1h_tokens=int(creation.get("ephemeral_1h_input_tokens") or 0),
        reasoning_tokens=int(details.get("thinking_tokens") or 0),
    )


def thinking_signature(blocks: list[dict[str, Any]]) -> str | None:
    """The ``reasoning_signature`` that lets ``anthropic_wire`` send these thinking blocks back."""
    if not blocks:
        return None
    if len(blocks) == 1 and blocks[0]["type"] == "thinking":
        return str(blocks[0].get("signature") or "") or None
    return THINKING_ENVELOPE + base64.urlsafe_b64encode(orjson.dumps(blocks)).decode()


def _json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


def result_from_body(body: Mapping[str, Any]) -> ChatResult:
    """A parsed non-streamed answer as a result."""
    text: list[str] = []
    reasoning: list[str] = []
    thinking: list[dict[str, Any]] = []
    calls: list[ToolCall] = []
    json_answer = False
    for block in body.get("content") or ():
        kind = block.get("type")
        if kind == "text":
            text.append(block.get("text") or "")
        elif kind == "tool_use" and block.get("name") == JSON_TOOL:
            text.append(_json_text(block.get("input") or {}))
            json_answer = True
        elif kind == "tool_use":
            calls.append(ToolCall(block["id"], block["name"], _json_text(block.get("input") or {})))
        elif kind == "thinking":
            reasoning.append(block.get("thinking") or "")
            thinking.append({"type": "thinking", "thinking": block.get("thinking") or "", "signature": block.get("signature") or ""})
        elif kind == "redacted_thinking":
            thinking.append({"type": "redacted_thinking", "data": block.get("data") or ""})
    finish = finish_reason(body.get("stop_reason"))
    if json_answer and finish == "tool_calls":
        # The forced JSON tool is how the answer was asked for, not a call for the client to run.
        finish = "stop"
    return ChatResult(
        id=body.get("id") or "",
        model=body.get("model") or "",
        text="".join(text),
        tool_calls=tuple(calls),
        finish_reason=finish,
        usage=usage_from(body.get("usage")),
        reasoning="".join(reasoning),
        reasoning_signature=thinking_signature(thinking),
    )


# -------------------------------------------------------------------------------------- streams


@dataclass(slots=True)
class _Block:
    kind: str
    tool_index: int | None = None
    name: str | None = None
    thinking: list[str] = field(default_factory=list)
    signature: str = ""
    # Whether the signature was already given (as it arrived), so the final chunk need not repeat it.
    signed: bool = False
    data: str = ""


class AnthropicStreamDecoder:
    """SSE lines of a streamed Messages answer -> chunks; one instance per stream.

    ``map_error`` turns an ``error`` event's body into the error to raise (an overload mid-stream
    is retryable, a bad request is not).
    """

    def __init__(self, map_error: Any) -> None:
        self._sse = SSEDecoder()
        self._map_error = map_error
        self._blocks: dict[int, _Block] = {}
        self._tools = 0
        self._usage: dict[str, Any] = {}
        self._stop_reason: str | None = None
        self._json_answer = False
        self._started = False
        self._done = False

    def feed(self, line: bytes) -> Iterator[Chunk]:
        for event in self._sse.feed(line):
            if self._done or not event.data:
                continue
            try:
                data = orjson.loads(event.data)
            except orjson.JSONDecodeError:
                raise StreamInterruptedError(f"the upstream sent a malformed stream event: {event.data[:120]!r}") from None
            yield from self._on_event(data.get("type") or event.event or "", data)

    def close(self) -> Iterator[Chunk]:
        yield from self.feed(b"")
        if not self._done:
            where = "mid-answer" if self._started else "before answering (empty stream)"
            raise StreamInterruptedError(f"the upstream stream ended {where}, without message_stop")

    def _on_event(self, kind: str, data: dict[str, Any]) -> Iterator[Chunk]:
        if kind == "message_start":
            message = data.get("message") or {}
            self._started = True
            self._usage.update(message.get("usage") or {})
            yield Chunk(id=message.get("id"), model=message.get("model"))
        elif kind == "content_block_start":
            yield from self._on_block_start(int(data["index"]), data.get("content_block") or {})
        elif kind == "content_block_delta":
            yield from self._on_delta(self._blocks.get(int(data["index"])), data.get("delta") or {})
        elif kind == "message_delta":
            self._stop_reason = (data.get("delta") or {}).get("stop_reason") or self._stop_reason
            self._usage.update({k: v for k, v in (data.get("usage") or {}).items() if v is not None})
        elif kind == "message_stop":
            self._done = True
            yield self._final_chunk()
        elif kind == "error":
            raise self._error(data)
        # ping, content_block_stop and event types added later carry nothing we need.

    def _error(self, data: dict[str, Any]) -> LLMRelayError:
        err: LLMRelayError = self._map_error(data)
        return err

    def _on_block_start(self, index: int, block: dict[str, Any]) -> Iterator[Chunk]:
        kind = block.get("type") or ""
        state = _Block(kind)
        self._blocks[index] = state
        if kind == "text" and block.get("text"):
            yield Chunk(text=block["text"])
        elif kind == "tool_use" and block.get("name") == JSON_TOOL:
            state.kind = "json"
            self._json_answer = True
        elif kind == "tool_use":
            state.tool_index, state.name = self._tools, block.get("name")
            self._tools += 1
            yield Chunk(tool_calls=(ToolCallDelta(state.tool_index, id=block.get("id"), name=block.get("name")),))
        elif kind == "thinking":
            if block.get("thinking"):
                state.thinking.append(block["thinking"])
                yield Chunk(reasoning=block["thinking"])
            state.signature = block.get("signature") or ""
        elif kind == "redacted_thinking":
            state.data = block.get("data") or ""

    def _on_delta(self, state: _Block | None, delta: dict[str, Any]) -> Iterator[Chunk]:
        kind = delta.get("type")
        if state is None:
            return
        if kind == "text_delta" and delta.get("text"):
            yield Chunk(text=delta["text"])
        elif kind == "input_json_delta" and delta.get("partial_json"):
            if state.kind == "json":
                yield Chunk(text=delta["partial_json"])
            elif state.tool_index is not None:
                yield Chunk(tool_calls=(ToolCallDelta(state.tool_index, arguments=delta["partial_json"]),))
        elif kind == "thinking_delta" and delta.get("thinking"):
            state.thinking.append(delta["thinking"])
            yield Chunk(reasoning=delta["thinking"])
        elif kind == "signature_delta" and state.kind == "thinking":
            state.signature += delta.get("signature") or ""
            # Now, while the thinking block is still open: an edge that renders Anthropic events
            # must send the signature inside that block, before the answer moves on to text.
            # The signature so far (a consumer keeps the last one), so a split delta stays whole.
            state.signed = True
            yield Chunk(reasoning_signature=state.signature)

    def _final_chunk(self) -> Chunk:
        blocks: list[dict[str, Any]] = []
        signed = False
        for index in sorted(self._blocks):
            b = self._blocks[index]
            if b.kind == "thinking":
                blocks.append({"type": "thinking", "thinking": "".join(b.thinking), "signature": b.signature})
                signed = b.signed
            elif b.kind == "redacted_thinking":
                blocks.append({"type": "redacted_thinking", "data": b.data})
        finish = finish_reason(self._stop_reason)
        if self._json_answer and finish == "tool_calls":
            finish = "stop"
        # One signed block was signed as it streamed; only an envelope (several blocks, or
        # redacted ones) is known at the end alone.
        signature = thinking_signature(blocks)
        if signed and len(blocks) == 1 and blocks[0]["type"] == "thinking":
            signature = None
        return Chunk(finish_reason=finish, usage=usage_from(self._usage), reasoning_signature=signature)
