"""The OpenAI Chat Completions wire format, upstream side: ChatRequest -> request body, and the
answer body -> ChatResult. Pure functions, shared by every OpenAI-compatible preset.

    >>> from llmrelay.types import ChatRequest, Message
    >>> chat_body(ChatRequest(model="gpt-4o-mini", messages=(Message.user("Hi"),)), stream=False,
    ...           opts=WireOptions())
    {'model': 'gpt-4o-mini', 'messages': [{'role': 'user', 'content': 'Hi'}], 'stream': False}

Servers that speak "OpenAI" differ in small ways; :class:`WireOptions` (filled from a preset's
``options``) names each difference instead of testing the server's name in code.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, Literal

import orjson

from ..types import (
    ChatRequest,
    ChatResult,
    Choice,
    DocumentPart,
    FinishReason,
    ImagePart,
    Message,
    Part,
    TextPart,
    Tool,
    ToolCall,
    Usage,
)

# o1, o3, o4-mini, gpt-5 (but not gpt-5-chat): they take max_completion_tokens and no sampling knobs.
_REASONING_MODEL = re.compile(r"(?:^|/)(?:o\d(?:$|[-.])|gpt-5(?!-chat|\.\d+-chat))")


@functools.lru_cache(maxsize=1024)
def is_reasoning_model(model: str) -> bool:
    # Asked several times per request (the fast path's check, the max-tokens field) for a handful
    # of distinct names: a bounded memo instead of a regex search each time.
    return bool(_REASONING_MODEL.search(model))


@dataclass(frozen=True, slots=True)
class WireOptions:
    """How this server's dialect differs from api.openai.com (set per preset, overridable in config).

    - ``max_tokens_field``: ``auto`` (reasoning models get ``max_completion_tokens``, others
      ``max_tokens``, which every compatible server knows), or a field name to always use.
    - ``stream_usage``: ask for a final usage chunk (``stream_options.include_usage``).
    - ``reasoning_echo``: how an assistant message's reasoning is sent back: ``None`` (dropped;
      OpenAI keeps it server-side), ``reasoning_content`` (DeepSeek), ``reasoning`` (OpenRouter,
      Ollama), ``mistral`` (a ``thinking`` content block).
    - ``reasoning_style``: ``effort`` (top-level ``reasoning_effort``) or ``openrouter``
      (``reasoning: {effort|max_tokens, enabled}``).
    - ``top_k``: whether the server accepts ``top_k`` (OpenAI rejects it).
    - ``drop_unsupported``: leave out temperature/top_p for reasoning models, which reject them.
    """

    max_tokens_field: str = "auto"
    stream_usage: bool = True
    reasoning_echo: Literal["reasoning_content", "reasoning", "mistral"] | None = None
    reasoning_style: Literal["effort", "openrouter"] = "effort"
    top_k: bool = False
    drop_unsupported: bool = True

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> WireOptions:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in options.items() if k in known})


# ------------------------------------------------------------------------------------ requests


def chat_body(request: ChatRequest, *, stream: bool, opts: WireOptions) -> dict[str, Any]:
    """The /chat/completions JSON body, in the shape the official SDK sends."""
    body: dict[str, Any] = {"model": request.model, "messages": messages_to_wire(request.messages, opts)}
    reasoning_model = is_reasoning_model(request.model)
    if request.tools:
        body["tools"] = [tool_to_wire(t) for t in request.tools]
        if request.parallel_tool_calls is not None:
            body["parallel_tool_calls"] = request.parallel_tool_calls
    if request.tool_choice is not None:
        body["tool_choice"] = tool_choice_to_wire(request.tool_choice)
    sampling_ok = not (reasoning_model and opts.drop_unsupported)
    if request.temperature is not None and sampling_ok:
        body["temperature"] = request.temperature
    if request.top_p is not None and sampling_ok:
        body["top_p"] = request.top_p
    if request.top_k is not None and opts.top_k:
        body["top_k"] = request.top_k
    if request.max_tokens is not None:
        body[max_tokens_field(request.model, opts)] = request.max_tokens
    if request.stop:
        body["stop"] = list(request.stop)
    if request.seed is not None:
        body["seed"] = request.seed
    if request.response_format is not None:
        body["response_format"] = dict(request.response_format)
    body.update(reasoning_to_wire(request, opts))
    if request.n != 1:
        body["n"] = request.n
    if request.user is not None:
        body["user"] = request.user
    body["stream"] = stream
    if stream and opts.stream_usage:
        body["stream_options"] = {"include_usage": True}
    body.update(request.extra)
    return body


def max_tokens_field(model: str, opts: WireOptions) -> str:
    if opts.max_tokens_field != "auto":
        return opts.max_tokens_field
    return "max_completion_tokens" if is_reasoning_model(model) else "max_tokens"


def reasoning_to_wire(request: ChatRequest, opts: WireOptions) -> dict[str, Any]:
    r = request.reasoning
    if r is None:
        return {}
    if opts.reasoning_style == "openrouter":
        if not r.enabled:
            return {"reasoning": {"effort": "none"}}
        spec: dict[str, Any] = {"effort": r.effort} if r.effort else {}
        if r.budget_tokens is not None and not r.effort:
            spec["max_tokens"] = r.budget_tokens
        return {"reasoning": {**spec, "enabled": True}}
    # OpenAI style takes an effort level only; a bare token budget has no equivalent here.
    return {"reasoning_effort": r.effort} if r.enabled and r.effort else {}


def tool_to_wire(tool: Tool) -> dict[str, Any]:
    fn: dict[str, Any] = {"name": tool.name}
    if tool.description is not None:
        fn["description"] = tool.description
    fn["parameters"] = dict(tool.parameters)
    if tool.strict is not None:
        fn["strict"] = tool.strict
    return {"type": "function", "function": fn}


def tool_choice_to_wire(choice: str) -> str | dict[str, Any]:
    if choice in ("auto", "none", "required"):
        return choice
    return {"type": "function", "function": {"name": choice}}


def messages_to_wire(messages: Sequence[Message], opts: WireOptions) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for m in messages:
        out.extend(message_to_wire(m, opts))
    return out


def message_to_wire(m: Message, opts: WireOptions) -> list[dict[str, Any]]:
    """One message, or two: a tool result with images becomes the tool message (its text) plus a
    user message carrying the images, since OpenAI tool messages take text only."""
    if m.role == "assistant":
        return [_assistant(m, opts)]
    if m.role == "tool":
        parts = () if m.content is None or isinstance(m.content, str) else tuple(m.content)
        media = [p for p in parts if not isinstance(p, TextPart)]
        msg = {"role": "tool", "tool_call_id": m.tool_call_id or "", "content": m.text()}
        if not media:
            return [msg]
        return [msg, {"role": "user", "content": [part_to_wire(p) for p in media]}]
    wire: dict[str, Any] = {"role": m.role, "content": content_to_wire(m.content)}
    if m.name:
        wire["name"] = m.name
    return [wire]


def _assistant(m: Message, opts: WireOptions) -> dict[str, Any]:
    text = m.text() if m.content is not None else None
    wire: dict[str, Any] = {"role": "assistant", "content": text or None}
    if m.reasoning is not None and opts.reasoning_echo == "mistral":
        blocks: list[dict[str, Any]] = [
            {"type": "thinking", "thinking": [{"type": "text", "text": m.reasoning}]}
        ]
        if text:
            blocks.append({"type": "text", "text": text})
        wire["content"] = blocks
    elif m.reasoning is not None and opts.reasoning_echo:
        wire[opts.reasoning_echo] = m.reasoning
    if m.tool_calls:
        wire["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in m.tool_calls
        ]
    if m.name:
        wire["name"] = m.name
    return wire


def content_to_wire(content: str | Sequence[Part] | None) -> str | list[dict[str, Any]] | None:
    if content is None or isinstance(content, str):
        return content
    return [part_to_wire(p) for p in content]


def part_to_wire(p: Part) -> dict[str, Any]:
    if isinstance(p, TextPart):
        out: dict[str, Any] = {"type": "text", "text": p.text}
        if p.cache_control is not None:
            out["cache_control"] = dict(p.cache_control)  # OpenRouter forwards it to Anthropic
        return out
    if isinstance(p, ImagePart):
        image: dict[str, Any] = {"url": p.data_url()}
        if p.detail:
            image["detail"] = p.detail
        return {"type": "image_url", "image_url": image}
    if isinstance(p, DocumentPart):
        data = p.url or f"data:{p.media_type or 'application/pdf'};base64,{p.data or ''}"
        file: dict[str, Any] = {"file_data": data}
        if p.name:
            file["filename"] = p.name
        return {"type": "file", "file": file}
    raise TypeError(f"unsupported content part {type(p).__name__}")


# ----------------------------------------------------------------------------------- responses

_FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "end_turn": "stop",
    "stop_sequence": "stop",
    "eos": "stop",
    "length": "length",
    "max_tokens": "length",
    "model_length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "tool_use": "tool_calls",
    "content_filter": "content_filter",
    "error": "error",
}


def finish_reason(raw: Any) -> FinishReason | None:
    """The normalised finish reason; an unknown non-empty value counts as a normal stop."""
    if not raw:
        return None
    return _FINISH.get(str(raw), "stop")


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) else 0


def usage_from_wire(u: Any) -> Usage | None:
    """OpenAI usage (with DeepSeek's and OpenRouter's extra fields) as a Usage; None if absent."""
    if not isinstance(u, Mapping):
        return None
    if len(u) == 3:
        # Most answers: the three counts alone (no details, no provider extras).
        p, c = u.get("prompt_tokens"), u.get("completion_tokens")
        if type(p) is int and type(c) is int and "total_tokens" in u:
            return Usage(p, c)
    prompt = u.get("prompt_tokens_details") or {}
    completion = u.get("completion_tokens_details") or {}
    cached = _int(prompt.get("cached_tokens")) or _int(u.get("prompt_cache_hit_tokens"))
    return Usage(
        input_tokens=_int(u.get("prompt_tokens")),
        output_tokens=_int(u.get("completion_tokens")),
        cache_read_tokens=cached,
        cache_write_tokens=_int(prompt.get("cache_write_tokens")),
        reasoning_tokens=_int(completion.get("reasoning_tokens")),
    )


def split_content(content: Any) -> tuple[str, str]:
    """(text, reasoning) from a message's content: a string, or Mistral's list of text and
    ``thinking`` blocks."""
    if content is None:
        return "", ""
    if isinstance(content, str):
        return content, ""
    text: list[str] = []
    thinking: list[str] = []
    for block in content:
        if not isinstance(block, Mapping):
            continue
        if block.get("type") == "thinking":
            inner = block.get("thinking")
            if isinstance(inner, str):
                thinking.append(inner)
            else:
                thinking.extend(b.get("text", "") for b in inner or () if isinstance(b, Mapping))
        elif isinstance(block.get("text"), str):
            text.append(block["text"])
    return "".join(text), "".join(thinking)


def reasoning_of(message: Mapping[str, Any]) -> str:
    """The reasoning text: ``reasoning_content`` (DeepSeek, vLLM, Groq) or ``reasoning`` (OpenRouter,
    Groq parsed format, Ollama)."""
    for key in ("reasoning_content", "reasoning"):
        value = message.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


def arguments_text(args: Any) -> str:
    if args is None:
        return ""
    return args if isinstance(args, str) else orjson.dumps(args).decode()


def choice_from_wire(choice: Mapping[str, Any], index: int) -> Choice:
    """One ``choices[]`` entry of a non-streamed answer."""
    return Choice(index, *_choice_fields(choice))


def _choice_fields(choice: Mapping[str, Any]) -> tuple[str, tuple[ToolCall, ...], FinishReason, str]:
    """(text, tool calls, finish reason, reasoning) of a ``choices[]`` entry."""
    msg = choice.get("message") or {}
    text, thinking = split_content(msg.get("content"))
    if not text and isinstance(msg.get("refusal"), str):
        text = msg["refusal"]
    calls = tuple(
        ToolCall(
            id=c.get("id") or f"call_{i}",
            name=(c.get("function") or {}).get("name") or "",
            arguments=arguments_text((c.get("function") or {}).get("arguments")) or "{}",
        )
        for i, c in enumerate(msg.get("tool_calls") or ())
    )
    finish = finish_reason(choice.get("finish_reason")) or "stop"
    if calls and finish == "stop":
        finish = "tool_calls"
    return text, calls, finish, reasoning_of(msg) or thinking


def result_from_body(body: Mapping[str, Any], provider: str | None = None) -> ChatResult:
    """A non-streamed answer as a ChatResult (``provider``: the config name that answered); with
    ``n > 1``, every choice, by index."""
    raw = body["choices"]
    usage = usage_from_wire(body.get("usage")) or Usage()
    if len(raw) == 1:
        # One answer (nearly every call): its fields go into the result directly, no Choice.
        text, calls, finish, reasoning = _choice_fields(raw[0])
        return ChatResult(str(body.get("id") or ""), str(body.get("model") or ""), text, calls, finish, usage,
                          reasoning, None, provider)
    raw = sorted(raw, key=lambda c: c.get("index", 0) if isinstance(c.get("index"), int) else 0)
    choices = tuple(choice_from_wire(c, i) for i, c in enumerate(raw))
    first = choices[0]
    return ChatResult(
        id=str(body.get("id") or ""),
        model=str(body.get("model") or ""),
        text=first.text,
        tool_calls=first.tool_calls,
        finish_reason=first.finish_reason,
        usage=usage,
        reasoning=first.reasoning,
        provider=provider,
        choices=choices,
    )
