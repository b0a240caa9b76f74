"""ChatRequest -> Anthropic Messages request body, in the shape the official SDK sends.

Pure functions, no I/O:

    >>> from llmrelay.types import ChatRequest, Message
    >>> body = request_body(ChatRequest(model="claude-haiku-4-5", messages=(
    ...     Message.system("Be brief."), Message.user("Hi"))), stream=False)
    >>> body["system"], body["messages"], body["max_tokens"]
    ('Be brief.', [{'role': 'user', 'content': [{'type': 'text', 'text': 'Hi'}]}], 4096)

Mapping decisions that are not obvious from the API reference:

* System messages, wherever they are, become the top-level ``system`` (joined by a blank line; a
  list of blocks when any part carries ``cache_control``).
* Consecutive messages of one role are merged (the API requires alternation); tool results become
  ``tool_result`` blocks of a user turn.
* An assistant message last in the list is a prefill: the model continues it. Its trailing
  whitespace is stripped because the API rejects it.
* Reasoning (see :func:`thinking_fields`): ``budget_tokens`` -> ``thinking: enabled`` with that
  budget; an effort level on Claude 4.6+ -> ``thinking: adaptive`` + ``output_config.effort``
  (``minimal`` becomes ``low``), on older models -> a budget from :data:`EFFORT_BUDGETS`;
  ``Reasoning(enabled=False, effort=...)`` sets the effort without thinking.
* ``response_format`` json_schema -> ``output_config.format`` where the model supports it, else a
  forced tool named :data:`JSON_TOOL` whose input the response decoder turns back into text.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from ..errors import InvalidRequestError
from ..types import ChatRequest, DocumentPart, ImagePart, Message, Part, Reasoning, TextPart
from .anthropic_models import ModelTraits, traits

DEFAULT_MAX_TOKENS = 4096
MIN_THINKING_BUDGET = 1024
# Thinking budget for an effort level on models without adaptive thinking.
EFFORT_BUDGETS: Mapping[str, int] = {
    "minimal": 1024,
    "low": 2048,
    "medium": 8192,
    "high": 16384,
    "xhigh": 32000,
}
# The forced tool that carries a JSON answer on models without native structured output.
JSON_TOOL = "llmrelay_json_response"
# An envelope for thinking blocks that one signature string cannot carry (see anthropic_decode).
THINKING_ENVELOPE = "llmrelay-thinking-v1:"


def request_body(request: ChatRequest, *, stream: bool, default_max_tokens: int = DEFAULT_MAX_TOKENS) -> dict[str, Any]:
    """The JSON body of a ``POST /v1/messages`` call for ``request``."""
    model = traits(request.model)
    body: dict[str, Any] = {"model": request.model, "messages": messages_to_wire(request.messages)}
    system = system_to_wire(request.messages)
    if system is not None:
        body["system"] = system
    thinking, output_config = thinking_fields(request.reasoning, model)
    body["max_tokens"] = max_tokens_for(request, thinking, model, default_max_tokens)
    _sampling(body, request, thinking_on=thinking is not None and thinking.get("type") != "disabled")
    if request.stop:
        body["stop_sequences"] = list(request.stop)
    if thinking is not None:
        body["thinking"] = thinking
    _tools(body, request)
    _response_format(body, request, model, output_config)
    if output_config:
        body["output_config"] = output_config
    if request.user:
        body["metadata"] = {"user_id": request.user}
    body["stream"] = stream
    for key, value in request.extra.items():
        body.setdefault(key, value)
    return body


# ------------------------------------------------------------------------------- sampling, limits


def _sampling(body: dict[str, Any], request: ChatRequest, *, thinking_on: bool) -> None:
    # With thinking on, the API rejects temperature != 1 and any top_k; OpenAI-style clients send
    # them by habit, so they are dropped rather than turned into a 400.
    if request.temperature is not None and not thinking_on:
        body["temperature"] = request.temperature
    if request.top_p is not None:
        body["top_p"] = max(request.top_p, 0.95) if thinking_on else request.top_p
    if request.top_k is not None and not thinking_on:
        body["top_k"] = request.top_k


def max_tokens_for(
    request: ChatRequest, thinking: Mapping[str, Any] | None, model: ModelTraits, default: int
) -> int:
    """``max_tokens`` is required by the API and must exceed the thinking budget."""
    budget = int(thinking.get("budget_tokens", 0)) if thinking else 0
    if request.max_tokens is not None:
        wanted = request.max_tokens
        if budget and wanted <= budget:
            # The caller's max_tokens meant the visible answer; thinking comes on top of it.
            wanted = min(budget + wanted, model.max_output)
        return wanted
    return min(max(default, budget + default) if budget else default, model.max_output)


def thinking_fields(
    reasoning: Reasoning | None, model: ModelTraits
) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """``(thinking, output_config)`` for a reasoning request (see the module docstring)."""
    if reasoning is None:
        return None, {}
    output_config: dict[str, Any] = {}
    if reasoning.effort and model.adaptive_thinking:
        output_config["effort"] = "low" if reasoning.effort == "minimal" else reasoning.effort
    if not reasoning.enabled:
        return None, output_config
    if reasoning.budget_tokens is not None:
        return {"type": "enabled", "budget_tokens": max(MIN_THINKING_BUDGET, reasoning.budget_tokens)}, output_config
    if model.adaptive_thinking:
        thinking: dict[str, Any] = {"type": "adaptive"}
        if model.summarized_display:
            thinking["display"] = "summarized"
        return thinking, output_config
    budget = EFFORT_BUDGETS[reasoning.effort or "medium"]
    return {"type": "enabled", "budget_tokens": budget}, output_config


# ---------------------------------------------------------------------------------- tools, format


def _tools(body: dict[str, Any], request: ChatRequest) -> None:
    if request.tools:
        tools = []
        for t in request.tools:
            tool: dict[str, Any] = {"name": t.name, "input_schema": dict(t.parameters)}
            if t.description is not None:
                tool["description"] = t.description
            if t.strict is not None:
                tool["strict"] = t.strict
            tools.append(tool)
        body["tools"] = tools
    choice = tool_choice_to_wire(request.tool_choice, request.parallel_tool_calls)
    if choice is not None and (request.tools or choice["type"] == "none"):
        body["tool_choice"] = choice


def tool_choice_to_wire(choice: str | None, parallel: bool | None) -> dict[str, Any] | None:
    if choice is None and parallel is not False:
        return None
    if choice in (None, "auto"):
        wire: dict[str, Any] = {"type": "auto"}
    elif choice == "none":
        return {"type": "none"}
    elif choice in ("required", "any"):
        wire = {"type": "any"}
    else:
        wire = {"type": "tool", "name": choice}
    if parallel is False:
        wire["disable_parallel_tool_use"] = True
    return wire


def _response_format(
    body: dict[str, Any], request: ChatRequest, model: ModelTraits, output_config: dict[str, Any]
) -> None:
    fmt = request.response_format
    if not fmt or fmt.get("type") in (None, "text"):
        return
    if fmt.get("type") == "json_schema":
        schema = dict((fmt.get("json_schema") or {}).get("schema") or {"type": "object"})
        if model.native_json_schema:
            output_config["format"] = {"type": "json_schema", "schema": schema}
            return
        body.setdefault("tools", []).append(
            {"name": JSON_TOOL, "description": "Give the answer as this JSON object.", "input_schema": schema}
        )
        body["tool_choice"] = {"type": "tool", "name": JSON_TOOL}
        return
    # json_object: the API has no schema-less JSON mode, so it is asked for in words.
    note = "Answer with a single JSON object and nothing else."
    system = body.get("system")
    if isinstance(system, list):
        system.append({"type": "text", "text": note})
    else:
        body["system"] = f"{system}\n\n{note}" if system else note


# -------------------------------------------------------------------------------------- messages


def system_to_wire(messages: Sequence[Message]) -> str | list[dict[str, Any]] | None:
    systems = [m for m in messages if m.role == "system"]
    if not systems:
        return None
    parts = [p for m in systems for p in _as_parts(m.content)]
    if any(isinstance(p, TextPart) and p.cache_control for p in parts):
        return [_text_block(p) for p in parts if isinstance(p, TextPart)]
    return "\n\n".join(m.text() for m in systems)


def messages_to_wire(messages: Sequence[Message]) -> list[dict[str, Any]]:
    turns: list[dict[str, Any]] = []
    convo = [m for m in messages if m.role != "system"]
    for i, msg in enumerate(convo):
        prefill = i == len(convo) - 1 and msg.role == "assistant"
        role = "assistant" if msg.role == "assistant" else "user"
        blocks = _assistant_blocks(msg, prefill) if role == "assistant" else _user_blocks(msg)
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    return turns


def _as_parts(content: str | Sequence[Part] | None) -> list[Part]:
    if content is None:
        return []
    if isinstance(content, str):
        return [TextPart(content)]
    return list(content)


def _user_blocks(msg: Message) -> list[dict[str, Any]]:
    if msg.role == "tool":
        # A string stays a string; parts (text, images) become blocks, as the SDK sends them.
        content: str | list[dict[str, Any]]
        if isinstance(msg.content, str) or msg.content is None:
            content = msg.content or ""
        else:
            content = [_part_block(p) for p in msg.content]
        return [
            {"type": "tool_result", "tool_use_id": msg.tool_call_id or "", "content": content, "is_error": msg.is_error}
        ]
    return [_part_block(p) for p in _as_parts(msg.content)]


def _assistant_blocks(msg: Message, prefill: bool) -> list[dict[str, Any]]:
    blocks = thinking_blocks(msg.reasoning, msg.reasoning_signature)
    parts = _as_parts(msg.content)
    for j, part in enumerate(parts):
        if not isinstance(part, TextPart):
            continue
        text = part.text.rstrip() if prefill and j == len(parts) - 1 and not msg.tool_calls else part.text
        # The API rejects empty text blocks; an empty assistant turn carries nothing.
        if text:
            blocks.append(_text_block(TextPart(text, cache_control=part.cache_control)))
    for call in msg.tool_calls:
        blocks.append({"type": "tool_use", "id": call.id, "name": call.name, "input": _arguments(call.arguments, call.name)})
    return blocks


def thinking_blocks(reasoning: str | None, signature: str | None) -> list[dict[str, Any]]:
    """The thinking blocks to send back for an assistant turn.

    Unsigned reasoning (from another provider, or a display-omitted turn) cannot be verified by the
    API and is not sent.
    """
    if not signature:
        return []
    if signature.startswith(THINKING_ENVELOPE):
        raw = base64.urlsafe_b64decode(signature[len(THINKING_ENVELOPE):].encode())
        blocks: list[dict[str, Any]] = orjson.loads(raw)
        return blocks
    return [{"type": "thinking", "thinking": reasoning or "", "signature": signature}]


def _arguments(arguments: str, name: str) -> Any:
    if not arguments.strip():
        return {}
    try:
        return orjson.loads(arguments)
    except orjson.JSONDecodeError:
        raise InvalidRequestError(
            f"the arguments of an earlier call to tool {name!r} are not valid JSON ({arguments[:80]!r}); "
            "fix or drop that call from the history",
            param="messages",
        ) from None


def _text_block(part: TextPart) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "text", "text": part.text}
    if part.cache_control:
        block["cache_control"] = dict(part.cache_control)
    return block


def _part_block(part: Part) -> dict[str, Any]:
    if isinstance(part, TextPart):
        return _text_block(part)
    if isinstance(part, ImagePart):
        return {"type": "image", "source": _source(part.url, part.data, part.media_type or "image/png")}
    if isinstance(part, DocumentPart):
        block: dict[str, Any] = {"type": "document", "source": _document_source(part)}
        if part.name:
            block["title"] = part.name
        return block
    raise InvalidRequestError(f"unsupported content part {type(part).__name__}")


def _source(url: str | None, data: str | None, media_type: str) -> dict[str, Any]:
    if data is not None:
        return {"type": "base64", "media_type": media_type, "data": data}
    if url and url.startswith("data:"):
        head, _, payload = url.partition(",")
        return {"type": "base64", "media_type": head[5:].split(";")[0] or media_type, "data": payload}
    if url:
        return {"type": "url", "url": url}
    raise InvalidRequestError("an image or document part needs a url or data")


def _document_source(part: DocumentPart) -> dict[str, Any]:
    media_type = part.media_type or "application/pdf"
    if part.data is not None and media_type.startswith("text/"):
        # Plain text documents go as text, not base64 (the SDK's shape).
        return {"type": "text", "media_type": "text/plain", "data": _decoded_text(part.data)}
    return _source(part.url, part.data, media_type)


def _decoded_text(data: str) -> str:
    """``DocumentPart.data`` is base64; text that is not valid base64 is taken as it is."""
    try:
        return base64.b64decode(data, validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return data
