"""Gemini ``generateContent`` wire format: pure mapping between llmrelay types and Google's JSON.

The request has the shape the ``google-genai`` SDK sends (camelCase proto-JSON): ``contents`` with
roles ``user``/``model``, ``systemInstruction``, ``tools[].functionDeclarations``, ``toolConfig`` and
``generationConfig``. Answers (whole or one SSE event at a time) become chunks; the provider module
adds the HTTP and error handling around these functions.

    >>> from llmrelay.types import ChatRequest, Message
    >>> request_body(ChatRequest(model="gemini-2.5-flash", messages=(Message.user("Hi"),)))
    {'contents': [{'role': 'user', 'parts': [{'text': 'Hi'}]}]}
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import orjson

from ..types import (
    ChatRequest,
    Chunk,
    DocumentPart,
    FinishReason,
    ImagePart,
    Message,
    Part,
    Reasoning,
    TextPart,
    Tool,
    ToolCallDelta,
    Usage,
)

# Gemini 3 rejects a replayed function call without the thought signature it came with. For calls
# that never had one (history from another model), Google documents this placeholder, which skips
# the check; it is base64 of "context_engineering_is_the_way_to_go".
DUMMY_SIGNATURE = base64.b64encode(b"context_engineering_is_the_way_to_go").decode()

# Token budgets for an OpenAI-style effort on models that take a budget (Gemini 2.5).
_EFFORT_BUDGET = {"minimal": 128, "low": 1024, "medium": 8192, "high": 24576, "xhigh": 32768}

_FINISH: dict[str, FinishReason] = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "MODEL_ARMOR": "content_filter",
    "LANGUAGE": "content_filter",
    "MALFORMED_FUNCTION_CALL": "error",
    "UNEXPECTED_TOOL_CALL": "error",
    "TOO_MANY_TOOL_CALLS": "error",
}

# JSON Schema keys the OpenAPI-subset ``parameters`` field rejects (the ``parametersJsonSchema``
# field takes full JSON Schema and needs no cleaning).
_OPENAPI_DROP = frozenset({"$schema", "$id", "additionalProperties", "$defs", "definitions", "$comment", "examples"})


# ------------------------------------------------------------------------------------- request


def request_body(request: ChatRequest, *, schema_mode: str = "json_schema") -> dict[str, Any]:
    """The JSON body of a generateContent call for ``request``.

    ``schema_mode`` is ``json_schema`` (tool schemas sent whole as ``parametersJsonSchema``, what
    current models and the SDK use) or ``openapi`` (the older ``parameters`` field, schemas cleaned
    of the JSON Schema keys it rejects and ``$ref`` inlined), for older models and endpoints.
    """
    system, contents = _contents(request.messages, gemini3=_is_gemini3(request.model))
    body: dict[str, Any] = {"contents": contents}
    if system:
        body["systemInstruction"] = {"role": "user", "parts": system}
    if request.tools:
        body["tools"] = [{"functionDeclarations": [_declaration(t, schema_mode) for t in request.tools]}]
    tool_config = _tool_config(request)
    if tool_config:
        body["toolConfig"] = tool_config
    config = _generation_config(request)
    if config:
        body["generationConfig"] = config
    _merge_extra(body, request.extra)
    return body


def _is_gemini3(model: str) -> bool:
    return model.rsplit("/", 1)[-1].startswith("gemini-3")


def _contents(messages: Sequence[Message], *, gemini3: bool) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    system: list[dict[str, Any]] = []
    contents: list[dict[str, Any]] = []
    # functionResponse must name the function; tool messages carry only the call id.
    names = {c.id: c.name for m in messages for c in m.tool_calls}
    for msg in messages:
        if msg.role == "system":
            system.extend(_user_parts(msg.content))
            continue
        if msg.role == "assistant":
            role, parts = "model", _model_parts(msg, gemini3=gemini3)
        elif msg.role == "tool":
            role, parts = "user", [_function_response(msg, names)]
        else:
            role, parts = "user", _user_parts(msg.content)
        if not parts:
            continue
        # Results of parallel calls go back in one turn, as Gemini expects; a user message that
        # follows tool results joins that turn too.
        if msg.role != "assistant" and contents and contents[-1]["role"] == "user" and _has_response(contents[-1]):
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})
    return system, contents


def _has_response(content: Mapping[str, Any]) -> bool:
    return any("functionResponse" in p for p in content["parts"])


def _user_parts(content: str | Sequence[Part] | None) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}]
    return [_part(p) for p in content]


def _part(part: Part) -> dict[str, Any]:
    if isinstance(part, TextPart):
        return {"text": part.text}
    if isinstance(part, ImagePart | DocumentPart):
        default = "image/png" if isinstance(part, ImagePart) else "application/pdf"
        if part.data is not None:
            return {"inlineData": {"mimeType": part.media_type or default, "data": part.data}}
        url = part.url or ""
        if url.startswith("data:"):
            head, _, data = url.partition(",")
            mime = head[5:].split(";", 1)[0] or default
            return {"inlineData": {"mimeType": mime, "data": data}}
        file_data = {"fileUri": url}
        if part.media_type:
            file_data["mimeType"] = part.media_type
        return {"fileData": file_data}
    raise TypeError(f"unsupported content part {type(part).__name__}")


def _model_parts(msg: Message, *, gemini3: bool) -> list[dict[str, Any]]:
    parts = _user_parts(msg.content)
    parts = [p for p in parts if p.get("text") != ""] if msg.tool_calls else parts
    calls = [_function_call(c.id, c.name, c.arguments) for c in msg.tool_calls]
    signature = msg.reasoning_signature
    if calls and not signature and gemini3:
        signature = DUMMY_SIGNATURE
    if signature:
        # Gemini puts the signature on the first function call, else on the last part.
        target = calls[0] if calls else (parts[-1] if parts else None)
        if target is not None:
            target["thoughtSignature"] = signature
    return parts + calls


def _function_call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    try:
        args = orjson.loads(arguments or "{}")
    except orjson.JSONDecodeError:
        # Gemini needs an object; keep what the model produced rather than dropping it.
        args = {"arguments": arguments}
    if not isinstance(args, dict):
        args = {"value": args}
    return {"functionCall": {"id": call_id, "name": name, "args": args}}


def _function_response(msg: Message, names: Mapping[str, str]) -> dict[str, Any]:
    call_id = msg.tool_call_id or ""
    text = msg.text()
    response: Any
    try:
        response = orjson.loads(text)
    except orjson.JSONDecodeError:
        response = None
    if not isinstance(response, dict) or msg.is_error:
        # Gemini reads "output" as the result and "error" as a failure (google-genai docs).
        response = {"error" if msg.is_error else "output": text}
    name = names.get(call_id) or msg.name or ""
    return {"functionResponse": {"id": call_id, "name": name, "response": response}}


def _declaration(tool: Tool, schema_mode: str) -> dict[str, Any]:
    decl: dict[str, Any] = {"name": tool.name}
    if tool.description is not None:
        decl["description"] = tool.description
    if schema_mode == "openapi":
        decl["parameters"] = openapi_schema(tool.parameters)
    else:
        decl["parametersJsonSchema"] = {k: v for k, v in tool.parameters.items() if k != "$schema"}
    return decl


def openapi_schema(schema: Mapping[str, Any], defs: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``schema`` cleaned for the OpenAPI-subset ``parameters`` field: ``$ref`` inlined (one level
    of recursion, then an open object), unsupported keys dropped."""
    defs = {**(defs or {}), **schema.get("$defs", {}), **schema.get("definitions", {})}
    ref = schema.get("$ref")
    if isinstance(ref, str):
        target = defs.get(ref.rsplit("/", 1)[-1])
        if target is None or target is schema:
            return {"type": "object"}
        rest = {k: v for k, v in defs.items() if v is not target}  # stops infinite recursion
        return openapi_schema({**target, **{k: v for k, v in schema.items() if k != "$ref"}}, rest)
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _OPENAPI_DROP or key == "$ref":
            continue
        if key == "properties" and isinstance(value, Mapping):
            out[key] = {k: openapi_schema(v, defs) for k, v in value.items()}
        elif key in ("items", "not") and isinstance(value, Mapping):
            out[key] = openapi_schema(value, defs)
        elif key in ("anyOf", "oneOf", "allOf") and isinstance(value, list):
            out["anyOf" if key == "oneOf" else key] = [openapi_schema(v, defs) for v in value]
        elif key == "const":
            out["enum"] = [value]
        else:
            out[key] = value
    return out


def _tool_config(request: ChatRequest) -> dict[str, Any] | None:
    choice = request.tool_choice
    if choice is None or not request.tools:
        return None
    if choice == "auto" and all(t.strict for t in request.tools):
        # VALIDATED: the model may answer in text, and any call it makes follows the schema.
        return {"functionCallingConfig": {"mode": "VALIDATED"}}
    if choice in ("auto", "none"):
        return {"functionCallingConfig": {"mode": choice.upper()}}
    if choice == "required":
        return {"functionCallingConfig": {"mode": "ANY"}}
    return {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [choice]}}


def _generation_config(request: ChatRequest) -> dict[str, Any]:
    cfg: dict[str, Any] = {}
    for key, value in (
        ("temperature", request.temperature),
        ("topP", request.top_p),
        ("topK", request.top_k),
        ("maxOutputTokens", request.max_tokens),
        ("seed", request.seed),
    ):
        if value is not None:
            cfg[key] = value
    if request.stop:
        cfg["stopSequences"] = list(request.stop)
    if request.n > 1:
        cfg["candidateCount"] = request.n
    fmt = request.response_format or {}
    if fmt.get("type") == "json_object":
        cfg["responseMimeType"] = "application/json"
    elif fmt.get("type") == "json_schema":
        cfg["responseMimeType"] = "application/json"
        schema = (fmt.get("json_schema") or {}).get("schema")
        if schema is not None:
            cfg["responseJsonSchema"] = schema
    if request.reasoning is not None:
        cfg["thinkingConfig"] = thinking_config(request.reasoning, gemini3=_is_gemini3(request.model))
    return cfg


def thinking_config(reasoning: Reasoning, *, gemini3: bool) -> dict[str, Any]:
    """``thinkingConfig``: Gemini 3 takes a ``thinkingLevel``, Gemini 2.5 a ``thinkingBudget``."""
    if not reasoning.enabled:
        # Gemini 3 cannot turn thinking off; "low" is its cheapest level on every model.
        return {"thinkingLevel": "low"} if gemini3 else {"thinkingBudget": 0}
    cfg: dict[str, Any] = {"includeThoughts": True}
    if reasoning.budget_tokens is not None:
        cfg["thinkingBudget"] = reasoning.budget_tokens
    elif reasoning.effort is not None:
        if gemini3:
            cfg["thinkingLevel"] = "high" if reasoning.effort == "xhigh" else reasoning.effort
        else:
            cfg["thinkingBudget"] = _EFFORT_BUDGET[reasoning.effort]
    return cfg


def _merge_extra(body: dict[str, Any], extra: Mapping[str, Any]) -> None:
    """Pass-through fields (safetySettings, cachedContent, labels, server-side tools...)."""
    for key, value in extra.items():
        if key == "generationConfig" and isinstance(value, Mapping):
            body.setdefault("generationConfig", {}).update(value)
        elif key == "tools" and isinstance(value, list):
            body.setdefault("tools", []).extend(value)
        else:
            body[key] = value


# ------------------------------------------------------------------------------------ response


def usage_from(meta: Mapping[str, Any] | None) -> Usage | None:
    """``usageMetadata`` with OpenAI's semantics: cached and tool-use prompt tokens are input,
    thoughts are output."""
    if not meta:
        return None
    thoughts = int(meta.get("thoughtsTokenCount") or 0)
    return Usage(
        input_tokens=int(meta.get("promptTokenCount") or 0) + int(meta.get("toolUsePromptTokenCount") or 0),
        output_tokens=int(meta.get("candidatesTokenCount") or 0) + thoughts,
        cache_read_tokens=int(meta.get("cachedContentTokenCount") or 0),
        reasoning_tokens=thoughts,
    )


def finish_reason(reason: str | None, *, has_calls: bool) -> FinishReason | None:
    if not reason or reason == "FINISH_REASON_UNSPECIFIED":
        return None
    mapped = _FINISH.get(reason, "stop")
    return "tool_calls" if has_calls and mapped == "stop" else mapped


class PartReader:
    """Turns the parts of successive answer pieces into chunk deltas, numbering tool calls across
    the whole answer and giving them ids (Gemini usually sends none)."""

    __slots__ = ("_prefix", "calls", "signature")

    def __init__(self, response_id: str) -> None:
        self._prefix = response_id
        self.calls = 0
        self.signature: str | None = None

    def chunks(self, parts: Sequence[Mapping[str, Any]]) -> Iterator[Chunk]:
        for part in parts:
            sig = part.get("thoughtSignature")
            if sig and self.signature is None:
                # The first signature of the turn is the one Gemini needs back (see _model_parts).
                self.signature = sig
            call = part.get("functionCall")
            if call is not None:
                index, self.calls = self.calls, self.calls + 1
                call_id = call.get("id") or f"call_{self._prefix}_{index}"
                args = orjson.dumps(call.get("args") or {}).decode()
                yield Chunk(
                    tool_calls=(ToolCallDelta(index=index, id=call_id, name=call.get("name", ""), arguments=args),),
                    reasoning_signature=sig,
                )
            elif "text" in part:
                text = part["text"] or ""
                if part.get("thought"):
                    yield Chunk(reasoning=text, reasoning_signature=sig)
                elif text or sig:
                    yield Chunk(text=text, reasoning_signature=sig)
            # Server-side tool parts (executableCode, toolCall...) are the upstream's own business.


def first_candidate(body: Mapping[str, Any]) -> Mapping[str, Any]:
    candidates = body.get("candidates") or ()
    return candidates[0] if candidates else {}


def block_reason(body: Mapping[str, Any]) -> str | None:
    feedback = body.get("promptFeedback") or {}
    reason = feedback.get("blockReason")
    return str(reason) if reason else None
