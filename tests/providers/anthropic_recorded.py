"""Test helpers for the Anthropic wire tests: recorded Messages body -> ChatRequest, and the expected
answer derived straight from the recorded JSON or SSE text (independently of the adapter).

What the converter does not model, on purpose (those interactions skip the request-shape check,
with the reason, while their responses are still parsed):

* server tools (``tools[].type``: web search, code execution, memory, advisor, tool search) and
  their history blocks (``server_tool_use``, ``*_tool_result``, ``mcp_tool_*``, ``compaction``);
* tool options beyond name/description/schema/strict (``defer_loading``, ``cache_control``);
* beta-only messages (``role: system`` inside ``messages``, ``tool_addition``).

Top-level fields we carry but do not interpret (``cache_control``, ``container``,
``context_management``, ``mcp_servers``) go through ``ChatRequest.extra``.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

from llmrelay.providers.anthropic_decode import thinking_signature
from llmrelay.types import (
    ChatRequest,
    DocumentPart,
    ImagePart,
    Message,
    Part,
    Reasoning,
    TextPart,
    Tool,
    ToolCall,
)

PASSTHROUGH = ("cache_control", "container", "context_management", "mcp_servers")
MODELLED_BLOCKS = {"text", "image", "document", "tool_use", "tool_result", "thinking", "redacted_thinking"}
MODELLED_TOOL_KEYS = {"name", "description", "input_schema", "strict"}


class Unmodelled(Exception):
    """The recorded request uses a feature the unified request does not model."""


# ------------------------------------------------------------------------------ request converter


def to_chat_request(body: dict[str, Any]) -> ChatRequest:
    messages: list[Message] = []
    system = body.get("system")
    if isinstance(system, str):
        messages.append(Message.system(system))
    elif isinstance(system, list):
        parts = tuple(TextPart(b["text"], cache_control=b.get("cache_control")) for b in system)
        messages.append(Message(role="system", content=parts))
    for msg in body["messages"]:
        messages.extend(_messages(msg))
    reasoning, response_format = _reasoning(body)
    choice, parallel = _tool_choice(body.get("tool_choice"))
    return ChatRequest(
        model=body["model"],
        messages=tuple(messages),
        tools=tuple(_tool(t) for t in body.get("tools") or ()),
        tool_choice=choice,
        parallel_tool_calls=parallel,
        temperature=body.get("temperature"),
        top_p=body.get("top_p"),
        top_k=body.get("top_k"),
        max_tokens=body.get("max_tokens"),
        stop=tuple(body.get("stop_sequences") or ()),
        reasoning=reasoning,
        response_format=response_format,
        stream=bool(body.get("stream")),
        user=(body.get("metadata") or {}).get("user_id"),
        extra={k: body[k] for k in PASSTHROUGH if k in body},
    )


def _reasoning(body: dict[str, Any]) -> tuple[Reasoning | None, dict[str, Any] | None]:
    thinking = body.get("thinking")
    output = dict(body.get("output_config") or {})
    fmt = output.pop("format", None)
    response_format = {"type": "json_schema", "json_schema": {"schema": fmt["schema"]}} if fmt else None
    effort = output.pop("effort", None)
    if output:
        raise Unmodelled(f"output_config fields {sorted(output)}")
    if thinking is None:
        return (Reasoning(effort=effort, enabled=False) if effort else None), response_format
    if thinking["type"] == "enabled":
        return Reasoning(budget_tokens=thinking["budget_tokens"], effort=effort), response_format
    if thinking["type"] == "adaptive":
        return Reasoning(effort=effort), response_format
    raise Unmodelled(f"thinking type {thinking['type']!r}")


def _tool(t: dict[str, Any]) -> Tool:
    if "type" in t:
        raise Unmodelled(f"server tool {t['type']}")
    extra = set(t) - MODELLED_TOOL_KEYS
    if extra:
        raise Unmodelled(f"tool options {sorted(extra)}")
    return Tool(name=t["name"], description=t.get("description"), parameters=t["input_schema"], strict=t.get("strict"))


def _tool_choice(choice: dict[str, Any] | None) -> tuple[str | None, bool | None]:
    if choice is None:
        return None, None
    parallel = False if choice.get("disable_parallel_tool_use") else None
    name = {"auto": "auto", "any": "required", "none": "none"}.get(choice["type"]) or choice["name"]
    return name, parallel


def _messages(msg: dict[str, Any]) -> list[Message]:
    role = msg["role"]
    if role not in ("user", "assistant"):
        raise Unmodelled(f"message role {role!r} inside messages")
    content = msg["content"]
    blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
    for b in blocks:
        if b["type"] not in MODELLED_BLOCKS:
            raise Unmodelled(f"content block {b['type']!r}")
    if role == "assistant":
        return [_assistant(blocks)]
    out: list[Message] = []
    parts: list[Part] = []
    for b in blocks:
        if b["type"] == "tool_result":
            out.append(_tool_result(b))
        else:
            parts.append(_part(b))
    if parts:
        out.append(Message.user(tuple(parts)))
    return out


def _tool_result(b: dict[str, Any]) -> Message:
    content = b.get("content", "")
    value: str | tuple[Part, ...] = content if isinstance(content, str) else tuple(_part(p) for p in content)
    return Message.tool(b["tool_use_id"], value, is_error=bool(b.get("is_error")))


def _assistant(blocks: list[dict[str, Any]]) -> Message:
    thinking = [b for b in blocks if b["type"] in ("thinking", "redacted_thinking")]
    texts = tuple(TextPart(b["text"], cache_control=b.get("cache_control")) for b in blocks if b["type"] == "text")
    calls = tuple(
        ToolCall(b["id"], b["name"], json.dumps(b["input"])) for b in blocks if b["type"] == "tool_use"
    )
    return Message(
        role="assistant",
        content=texts,
        tool_calls=calls,
        reasoning="".join(b.get("thinking", "") for b in thinking) or None,
        reasoning_signature=thinking_signature(thinking),
    )


def _part(b: dict[str, Any]) -> Part:
    if b["type"] not in MODELLED_BLOCKS:
        raise Unmodelled(f"content block {b['type']!r}")
    if b["type"] == "text":
        return TextPart(b["text"], cache_control=b.get("cache_control"))
    src = b["source"]
    if b["type"] == "image":
        if src["type"] == "url":
            return ImagePart(url=src["url"])
        return ImagePart(data=src["data"], media_type=src["media_type"])
    if src["type"] == "text":
        data = base64.b64encode(src["data"].encode()).decode()
        return DocumentPart(data=data, media_type=src["media_type"], name=b.get("title"))
    if src["type"] == "url":
        return DocumentPart(url=src["url"], name=b.get("title"))
    return DocumentPart(data=src["data"], media_type=src["media_type"], name=b.get("title"))


# ------------------------------------------------------------------------------ expected answers


@dataclass
class Expected:
    id: str = ""
    model: str = ""
    text: str = ""
    reasoning: str = ""
    # (id, name, parsed arguments), in order.
    tool_calls: list[tuple[str, str, Any]] = field(default_factory=list)
    stop_reason: str | None = None
    usage: dict[str, Any] = field(default_factory=dict)
    complete: bool = False


def expected_from_json(body: dict[str, Any]) -> Expected:
    exp = Expected(id=body["id"], model=body["model"], stop_reason=body.get("stop_reason"), usage=body["usage"])
    exp.complete = True
    for b in body["content"]:
        if b["type"] == "text":
            exp.text += b["text"]
        elif b["type"] == "thinking":
            exp.reasoning += b["thinking"]
        elif b["type"] == "tool_use":
            exp.tool_calls.append((b["id"], b["name"], b["input"]))
    return exp


def expected_from_sse(text: str) -> Expected:
    """Replays the recorded events naively: every ``data:`` line is one JSON event."""
    exp = Expected()
    kinds: dict[int, str] = {}
    args: dict[int, str] = {}
    for line in text.splitlines():
        if not line.startswith("data:"):
            continue
        ev = json.loads(line[5:])
        if ev["type"] == "message_start":
            exp.id, exp.model = ev["message"]["id"], ev["message"]["model"]
            exp.usage = dict(ev["message"]["usage"])
        elif ev["type"] == "content_block_start":
            block = ev["content_block"]
            kinds[ev["index"]] = block["type"]
            if block["type"] == "tool_use":
                exp.tool_calls.append((block["id"], block["name"], None))
                args[ev["index"]] = ""
        elif ev["type"] == "content_block_delta":
            d = ev["delta"]
            if d["type"] == "text_delta":
                exp.text += d["text"]
            elif d["type"] == "thinking_delta":
                exp.reasoning += d["thinking"]
            elif d["type"] == "input_json_delta" and ev["index"] in args:
                args[ev["index"]] += d["partial_json"]
        elif ev["type"] == "message_delta":
            exp.stop_reason = ev["delta"]["stop_reason"]
            exp.usage.update(ev.get("usage") or {})
        elif ev["type"] == "message_stop":
            exp.complete = True
    parsed = [json.loads(a) if a else {} for _, a in sorted(args.items())]
    exp.tool_calls = [(i, n, p) for (i, n, _), p in zip(exp.tool_calls, parsed, strict=True)]
    return exp


def expected_usage(raw: dict[str, Any]) -> dict[str, int]:
    """OpenAI semantics, straight from DESIGN.md: prompt = input + cache reads + cache writes."""
    read = raw.get("cache_read_input_tokens") or 0
    write = raw.get("cache_creation_input_tokens") or 0
    return {
        "input_tokens": raw["input_tokens"] + read + write,
        "output_tokens": raw["output_tokens"],
        "cache_read_tokens": read,
        "cache_write_tokens": write,
        "cache_write_1h_tokens": (raw.get("cache_creation") or {}).get("ephemeral_1h_input_tokens", 0),
        "reasoning_tokens": (raw.get("output_tokens_details") or {}).get("thinking_tokens", 0),
    }
