"""The Anthropic Messages wire format at the edge: request JSON -> ChatRequest, and ChatResult /
Chunk streams -> response JSON / SSE events (message_start, content_block_*, message_delta,
message_stop).

    >>> req = decode_messages({"model": "smart", "max_tokens": 64,
    ...                        "messages": [{"role": "user", "content": "Hi"}]})
    >>> req.max_tokens, req.messages[0].text()
    (64, 'Hi')

Usage goes back with Anthropic's semantics: ``input_tokens`` excludes cache reads and writes,
which are reported apart (the unified Usage includes them, OpenAI style).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import orjson

from ..providers.anthropic_decode import thinking_signature
from ..providers.anthropic_wire import THINKING_ENVELOPE, thinking_blocks
from ..streaming import encode_sse
from ..types import (
    ChatRequest,
    ChatResult,
    Chunk,
    DocumentPart,
    ImagePart,
    Message,
    Part,
    Reasoning,
    TextPart,
    Tool,
    ToolCall,
    Usage,
)
from ._validate import bad, lst, model_name, obj, opt_int, opt_num, opt_str, stops, string

_STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "content_filter": "refusal",
         "error": "end_turn"}


# ------------------------------------------------------------------------------------ requests


def decode_messages(body: Any, *, need_max_tokens: bool = True) -> ChatRequest:
    """A ChatRequest from a parsed /v1/messages body; raises InvalidRequestError naming the field."""
    body = obj(body, "body")
    model = model_name(body)
    max_tokens = opt_int(body, "max_tokens")
    if max_tokens is None and need_max_tokens:
        bad("max_tokens", "missing required field")
    if "messages" not in body:
        bad("messages", "missing required field")
    messages: list[Message] = []
    system = body.get("system")
    if system is not None:
        messages.append(Message(role="system", content=_system(system)))
    for i, m in enumerate(lst(body["messages"], "messages", nonempty=True)):
        messages.extend(_message(m, f"messages.{i}"))
    meta = body.get("metadata")
    user = opt_str(obj(meta, "metadata"), "user_id", "metadata.") if meta is not None else None
    return ChatRequest(
        model=model,
        messages=tuple(messages),
        tools=_tools(body.get("tools")),
        tool_choice=_tool_choice(body.get("tool_choice")),
        parallel_tool_calls=_parallel(body.get("tool_choice")),
        temperature=opt_num(body, "temperature", 0, 1),
        top_p=opt_num(body, "top_p", 0, 1),
        top_k=opt_int(body, "top_k"),
        max_tokens=max_tokens,
        stop=stops(body.get("stop_sequences"), "stop_sequences"),
        reasoning=_thinking(body.get("thinking")),
        stream=body.get("stream") is True,
        user=user,
    )


def _system(raw: Any) -> str | tuple[Part, ...]:
    if isinstance(raw, str):
        return raw
    return tuple(_block_text(b, f"system.{i}") for i, b in enumerate(lst(raw, "system")))


def _block_text(raw: Any, path: str) -> TextPart:
    b = obj(raw, path)
    if b.get("type") != "text":
        bad(f"{path}.type", "expected a text block")
    cc = b.get("cache_control")
    return TextPart(string(b.get("text"), f"{path}.text"), cache_control=cc if isinstance(cc, dict) else None)


def _message(raw: Any, path: str) -> list[Message]:
    m = obj(raw, path)
    role = string(m.get("role"), f"{path}.role")
    if role not in ("user", "assistant"):
        bad(f"{path}.role", f"must be user or assistant; got {role!r}")
    if "content" not in m:
        bad(f"{path}.content", "missing required field")
    content = m["content"]
    if isinstance(content, str):
        return [Message(role=role, content=content)]  # type: ignore[arg-type]
    blocks = lst(content, f"{path}.content")
    if role == "assistant":
        return [_assistant(blocks, f"{path}.content")]
    return _user(blocks, f"{path}.content")


def _assistant(blocks: list[Any], path: str) -> Message:
    parts: list[Part] = []
    calls: list[ToolCall] = []
    # Every thinking block, redacted ones included, goes back upstream verbatim (one signature
    # cannot carry several: thinking_signature wraps them in an envelope the adapter unpacks).
    thinking: list[dict[str, Any]] = []
    for i, raw in enumerate(blocks):
        b = obj(raw, f"{path}.{i}")
        kind = b.get("type")
        if kind == "tool_use":
            calls.append(ToolCall(id=string(b.get("id"), f"{path}.{i}.id"), name=string(b.get("name"), f"{path}.{i}.name"),
                                  arguments=orjson.dumps(b.get("input") or {}).decode()))
        elif kind == "thinking":
            thinking.append({"type": "thinking", "thinking": opt_str(b, "thinking", f"{path}.{i}.") or "",
                             "signature": opt_str(b, "signature", f"{path}.{i}.") or ""})
        elif kind == "redacted_thinking":
            thinking.append({"type": "redacted_thinking", "data": opt_str(b, "data", f"{path}.{i}.") or ""})
        else:
            parts.append(_part(b, f"{path}.{i}"))
    text_only = all(isinstance(p, TextPart) for p in parts)
    content: str | tuple[Part, ...] | None = (
        "".join(p.text for p in parts if isinstance(p, TextPart)) if text_only else tuple(parts)
    )
    reasoning = "".join(b["thinking"] for b in thinking if b["type"] == "thinking")
    return Message(role="assistant", content=content or None, tool_calls=tuple(calls),
                   reasoning=reasoning or None, reasoning_signature=thinking_signature(thinking))


def _user(blocks: list[Any], path: str) -> list[Message]:
    """Tool results become tool messages (ahead of any text, as the protocol orders them)."""
    out: list[Message] = []
    parts: list[Part] = []
    for i, raw in enumerate(blocks):
        b = obj(raw, f"{path}.{i}")
        if b.get("type") == "tool_result":
            inner = b.get("content", "")
            content: str | tuple[Part, ...] = (
                inner if isinstance(inner, str)
                else tuple(_part(obj(x, f"{path}.{i}.content.{j}"), f"{path}.{i}.content.{j}")
                           for j, x in enumerate(lst(inner, f"{path}.{i}.content")))
            )
            out.append(Message.tool(string(b.get("tool_use_id"), f"{path}.{i}.tool_use_id"), content,
                                    is_error=b.get("is_error") is True))
        else:
            parts.append(_part(b, f"{path}.{i}"))
    if parts:
        out.append(Message(role="user", content=tuple(parts)))
    return out


def _part(b: Mapping[str, Any], path: str) -> Part:
    kind = b.get("type")
    if kind == "text":
        return _block_text(b, path)
    if kind in ("image", "document"):
        src = obj(b.get("source"), f"{path}.source")
        stype = src.get("type")
        if stype == "base64":
            data, media = string(src.get("data"), f"{path}.source.data"), opt_str(src, "media_type", f"{path}.source.")
            return ImagePart(data=data, media_type=media) if kind == "image" else DocumentPart(data=data, media_type=media)
        if stype == "url":
            url = string(src.get("url"), f"{path}.source.url")
            return ImagePart(url=url) if kind == "image" else DocumentPart(url=url)
        if stype == "text" and kind == "document":
            return TextPart(string(src.get("data"), f"{path}.source.data"))
        bad(f"{path}.source.type", f"unsupported source type {stype!r}; use base64 or url")
    bad(f"{path}.type", f"unsupported content block type {kind!r}")


def _tools(raw: Any) -> tuple[Tool, ...]:
    if raw is None:
        return ()
    out = []
    for i, t in enumerate(lst(raw, "tools")):
        t = obj(t, f"tools.{i}")
        schema = t.get("input_schema")
        out.append(Tool(
            name=string(t.get("name"), f"tools.{i}.name"),
            description=opt_str(t, "description", f"tools.{i}."),
            parameters=obj(schema, f"tools.{i}.input_schema") if schema is not None else {"type": "object", "properties": {}},
        ))
    return tuple(out)


def _tool_choice(raw: Any) -> str | None:
    if raw is None:
        return None
    tc = obj(raw, "tool_choice")
    kind = tc.get("type")
    if kind == "tool":
        return string(tc.get("name"), "tool_choice.name")
    choice = {"auto": "auto", "any": "required", "none": "none"}.get(kind) if isinstance(kind, str) else None
    if choice is None:
        bad("tool_choice.type", "must be auto, any, tool or none")
    return choice


def _parallel(raw: Any) -> bool | None:
    if isinstance(raw, dict) and raw.get("disable_parallel_tool_use") is True:
        return False
    return None


def _thinking(raw: Any) -> Reasoning | None:
    if raw is None:
        return None
    t = obj(raw, "thinking")
    if t.get("type") == "disabled":
        return Reasoning(enabled=False)
    return Reasoning(budget_tokens=opt_int(t, "budget_tokens", 0))


# ----------------------------------------------------------------------------------- responses


def usage_json(usage: Usage | None) -> dict[str, Any]:
    u = usage or Usage()
    return {
        "input_tokens": u.uncached_input_tokens,
        "output_tokens": u.output_tokens,
        "cache_read_input_tokens": u.cache_read_tokens,
        "cache_creation_input_tokens": u.cache_write_tokens,
    }


def _message_id(upstream: str | None, request_id: str) -> str:
    return upstream if upstream and upstream.startswith("msg_") else "msg_" + request_id.removeprefix("req_")


def _input(arguments: str) -> Any:
    try:
        value = orjson.loads(arguments or "{}")
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def encode_result(result: ChatResult, model: str, request_id: str, cost_usd: float | None) -> bytes:
    # Each thinking block as the upstream sent it (several, or redacted ones, travel in the
    # signature's envelope); unsigned reasoning from another provider as one block.
    content: list[dict[str, Any]] = thinking_blocks(result.reasoning, result.reasoning_signature)
    if result.reasoning and not content:
        content.append({"type": "thinking", "thinking": result.reasoning, "signature": ""})
    if result.text:
        content.append({"type": "text", "text": result.text})
    for c in result.tool_calls:
        content.append({"type": "tool_use", "id": c.id, "name": c.name, "input": _input(c.arguments)})
    usage = usage_json(result.usage)
    if cost_usd is not None:
        usage["cost"] = round(cost_usd, 10)
    stop = "tool_use" if result.tool_calls else _STOP.get(result.finish_reason, "end_turn")
    return orjson.dumps({
        "id": _message_id(result.id, request_id), "type": "message", "role": "assistant", "model": model,
        "content": content, "stop_reason": stop, "stop_sequence": None, "usage": usage,
    })


class StreamEncoder:
    """Encodes one answer's chunks as Anthropic stream events, opening and closing content blocks
    as the answer moves between thinking, text and tool calls."""

    __slots__ = ("_block", "_index", "_model", "_msg_id", "_signature", "_started", "_tool_index", "calls", "finish",
                 "usage")

    def __init__(self, model: str, request_id: str) -> None:
        self._model = model
        self._msg_id = _message_id(None, request_id)
        self._started = False
        self._index = -1
        # The open block: ("text" | "thinking" | "tool", tool-call index or -1), or None.
        self._block: tuple[str, int] | None = None
        self._tool_index: dict[int, int] = {}
        # The signature sent in the open thinking block (a repeat of it is not sent again).
        self._signature: str | None = None
        self.usage: Usage | None = None
        self.finish: str | None = None
        self.calls = False

    def _start(self, first: Chunk) -> bytes:
        self._started = True
        if first.id and first.id.startswith("msg_"):
            self._msg_id = first.id
        message: dict[str, Any] = {"id": self._msg_id, "type": "message", "role": "assistant", "model": self._model, "content": [],
                   "stop_reason": None, "stop_sequence": None, "usage": usage_json(first.usage)}
        return _ev("message_start", {"type": "message_start", "message": message})

    def _open(self, kind: str, tool: int, block: dict[str, Any]) -> bytes:
        out = self._close()
        self._index += 1
        self._block, self._signature = (kind, tool), None
        return out + _ev("content_block_start", {"type": "content_block_start", "index": self._index, "content_block": block})

    def _close(self) -> bytes:
        if self._block is None:
            return b""
        out = b""
        self._block = None
        return out + _ev("content_block_stop", {"type": "content_block_stop", "index": self._index})

    def _delta(self, delta: dict[str, Any]) -> bytes:
        return _ev("content_block_delta", {"type": "content_block_delta", "index": self._index, "delta": delta})

    def chunk(self, c: Chunk) -> bytes:
        out = b"" if self._started else self._start(c)
        sig = c.reasoning_signature
        if sig and sig.startswith(THINKING_ENVELOPE) and self._index < 0:
            # A whole answer in one chunk (a cache hit, a non-streamed upstream): its blocks verbatim.
            out += self._whole_thinking(c.reasoning, sig)
            c = replace(c, reasoning="", reasoning_signature=None)
        elif sig and not sig.startswith(THINKING_ENVELOPE) and not c.reasoning and self._block != ("thinking", -1):
            # A thinking block whose text the API omitted streams its signature alone.
            out += self._open("thinking", -1, {"type": "thinking", "thinking": "", "signature": ""})
        if c.reasoning:
            # A signature ends its thinking block: reasoning after it is the next block's.
            if self._block != ("thinking", -1) or self._signature is not None:
                out += self._open("thinking", -1, {"type": "thinking", "thinking": "", "signature": ""})
            out += self._delta({"type": "thinking_delta", "thinking": c.reasoning})
        # The signature goes out inside its thinking block, before that block's content_block_stop:
        # a client rebuilds the block from these events and sends it back to continue the turn.
        if c.reasoning_signature and self._block == ("thinking", -1) and self._signs_open_block(c.reasoning_signature):
            self._signature = c.reasoning_signature
            out += self._delta({"type": "signature_delta", "signature": c.reasoning_signature})
        if c.text:
            if self._block != ("text", -1):
                out += self._open("text", -1, {"type": "text", "text": ""})
            out += self._delta({"type": "text_delta", "text": c.text})
        for d in c.tool_calls:
            self.calls = True
            if self._block != ("tool", d.index):
                call_id = d.id or f"toolu_{self._msg_id[4:]}_{d.index}"
                out += self._open("tool", d.index, {"type": "tool_use", "id": call_id, "name": d.name or "", "input": {}})
            if d.arguments:
                out += self._delta({"type": "input_json_delta", "partial_json": d.arguments})
        if c.usage is not None:
            self.usage = c.usage
        if c.finish_reason:
            self.finish = c.finish_reason
        return out

    def _whole_thinking(self, reasoning: str, envelope: str) -> bytes:
        out = b""
        for block in thinking_blocks(reasoning, envelope):
            if block.get("type") == "redacted_thinking":
                out += self._open("redacted", -1, block)
                continue
            out += self._open("thinking", -1, {"type": "thinking", "thinking": "", "signature": ""})
            out += self._delta({"type": "thinking_delta", "thinking": block.get("thinking") or ""})
            self._signature = str(block.get("signature") or "")
            out += self._delta({"type": "signature_delta", "signature": self._signature})
        return out + self._close()

    def _signs_open_block(self, signature: str) -> bool:
        """Whether ``signature`` is the open thinking block's: its first, or the same one grown
        by a split ``signature_delta`` (chunks carry the signature so far). The envelope that
        sums up all of a turn's blocks at its end belongs to no single block."""
        if signature.startswith(THINKING_ENVELOPE) or signature == self._signature:
            return False
        return self._signature is None or signature.startswith(self._signature)

    def end(self, cost_usd: float | None) -> bytes:
        out = b"" if self._started else self._start(Chunk())
        out += self._close()
        stop = "tool_use" if self.calls else _STOP.get(self.finish or "stop", "end_turn")
        usage = usage_json(self.usage)
        if cost_usd is not None:
            usage["cost"] = round(cost_usd, 10)
        out += _ev("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
                                     "usage": usage})
        return out + _ev("message_stop", {"type": "message_stop"})


def _ev(name: str, data: Any) -> bytes:
    return encode_sse(orjson.dumps(data), event=name)


def error_event(body: Mapping[str, Any]) -> bytes:
    """An error after the stream started: Anthropic sends ``event: error``."""
    return _ev("error", body)
