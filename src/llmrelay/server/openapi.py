"""The OpenAPI 3.1 description of the public endpoints, served at ``GET /openapi.json``.

Request bodies are described as the protocols define them (the parts the gateway reads); unknown
fields are allowed because the OpenAI edge passes them to the provider.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from ..__about__ import __version__
from ._asgi import Request, Response

if TYPE_CHECKING:
    from .app import Gateway

_STR: dict[str, Any] = {"type": "string"}
_OPENAI_ERROR = {"type": "object", "required": ["error"], "properties": {"error": {
    "type": "object", "required": ["message", "type"],
    "properties": {"message": _STR, "type": _STR, "param": {"type": ["string", "null"]},
                   "code": {"type": ["string", "null"]}}}}}
_ANTHROPIC_ERROR = {"type": "object", "required": ["type", "error"], "properties": {
    "type": {"const": "error"},
    "error": {"type": "object", "required": ["type", "message"], "properties": {"type": _STR, "message": _STR}}}}
_CONTENT = {"oneOf": [_STR, {"type": "array", "items": {"type": "object", "required": ["type"],
                                                         "properties": {"type": _STR}}}, {"type": "null"}]}
_CHAT_REQUEST = {
    "type": "object", "required": ["model", "messages"],
    "properties": {
        "model": {"type": "string", "minLength": 1},
        "messages": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["role"],
            "properties": {"role": {"enum": ["system", "developer", "user", "assistant", "tool"]},
                           "content": _CONTENT, "tool_call_id": _STR, "name": _STR}}},
        "stream": {"type": "boolean"},
        "stream_options": {"type": "object", "properties": {"include_usage": {"type": "boolean"}}},
        "temperature": {"type": "number", "minimum": 0, "maximum": 2},
        "top_p": {"type": "number", "minimum": 0, "maximum": 1},
        "max_tokens": {"type": "integer", "minimum": 1},
        "max_completion_tokens": {"type": "integer", "minimum": 1},
        "n": {"type": "integer", "minimum": 1, "maximum": 128},
        "seed": {"type": "integer"},
        "stop": {"oneOf": [_STR, {"type": "array", "items": _STR}]},
        "tools": {"type": "array", "items": {"type": "object", "required": ["type", "function"], "properties": {
            "type": {"const": "function"},
            "function": {"type": "object", "required": ["name"], "properties": {
                "name": _STR, "description": _STR, "parameters": {"type": "object"}, "strict": {"type": "boolean"}}}}}},
        "tool_choice": {"oneOf": [{"enum": ["auto", "none", "required"]}, {"type": "object"}]},
        "user": _STR,
        "reasoning_effort": {"enum": ["minimal", "low", "medium", "high", "xhigh"]},
        "response_format": {"type": "object"},
    },
}
_USAGE = {"type": "object", "properties": {
    "prompt_tokens": {"type": "integer"}, "completion_tokens": {"type": "integer"},
    "total_tokens": {"type": "integer"}, "cost": {"type": "number", "description": "USD"}}}
_CHAT_RESPONSE = {"type": "object", "required": ["id", "object", "choices", "model"], "properties": {
    "id": _STR, "object": {"const": "chat.completion"}, "created": {"type": "integer"}, "model": _STR,
    "choices": {"type": "array", "items": {"type": "object"}}, "usage": _USAGE}}
_MESSAGES_REQUEST = {
    "type": "object", "required": ["model", "messages", "max_tokens"],
    "properties": {
        "model": {"type": "string", "minLength": 1},
        "max_tokens": {"type": "integer", "minimum": 1},
        "messages": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["role", "content"],
            "properties": {"role": {"enum": ["user", "assistant"]}, "content": _CONTENT}}},
        "system": {"oneOf": [_STR, {"type": "array", "items": {"type": "object"}}]},
        "stream": {"type": "boolean"},
        "temperature": {"type": "number", "minimum": 0, "maximum": 1},
        "top_p": {"type": "number", "minimum": 0, "maximum": 1},
        "top_k": {"type": "integer", "minimum": 1},
        "stop_sequences": {"type": "array", "items": _STR},
        "tools": {"type": "array", "items": {"type": "object", "required": ["name"], "properties": {
            "name": _STR, "description": _STR, "input_schema": {"type": "object"}}}},
        "tool_choice": {"type": "object", "required": ["type"], "properties": {
            "type": {"enum": ["auto", "any", "tool", "none"]}, "name": _STR}},
        "thinking": {"type": "object"},
        "metadata": {"type": "object", "properties": {"user_id": _STR}},
    },
}
_MESSAGE_RESPONSE = {"type": "object", "required": ["id", "type", "role", "content", "model"], "properties": {
    "id": _STR, "type": {"const": "message"}, "role": {"const": "assistant"}, "model": _STR,
    "content": {"type": "array", "items": {"type": "object"}},
    "stop_reason": {"type": ["string", "null"]}, "usage": {"type": "object"}}}
_KEY_CREATE = {"type": "object", "required": ["name"], "additionalProperties": False, "properties": {
    "name": {"type": "string", "minLength": 1}, "user": _STR, "team": _STR,
    "models": {"type": "array", "items": _STR}, "budget_usd": {"type": "number", "exclusiveMinimum": 0},
    "budget_period": {"enum": ["day", "week", "month", "total"]}, "rpm": {"type": "integer", "minimum": 1},
    "tpm": {"type": "integer", "minimum": 1}, "policy": _STR, "priority": {"enum": ["high", "normal", "low"]},
    "expires": {"type": "string", "description": "e.g. 30d, 12h"}, "expires_at": {"type": "number"}}}
_GATEWAY_HEADERS = {h: {"schema": _STR, "description": d} for h, d in {
    "x-llmrelay-request-id": "the request's id", "x-llmrelay-provider": "the provider that answered",
    "x-llmrelay-cost-usd": "the call's cost in USD (for streams: as known when headers were sent)",
    "x-llmrelay-cache": "hit, miss or off"}.items()}
_CALLER_PARAMS = [
    {"name": "x-llmrelay-user", "in": "header", "schema": _STR},
    {"name": "x-llmrelay-session", "in": "header", "schema": _STR},
    {"name": "x-llmrelay-priority", "in": "header", "schema": {"enum": ["high", "normal", "low"]}},
    {"name": "x-llmrelay-cache", "in": "header", "schema": {"enum": ["no-store", "refresh"]}},
]


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _errors(schema: dict[str, Any], *codes: int) -> dict[str, Any]:
    return {str(c): {"description": "error", **_json(schema)} for c in codes}


def _post(summary: str, req: dict[str, Any], resp: dict[str, Any], err: dict[str, Any], stream: bool = False) -> dict[str, Any]:
    ok: dict[str, Any] = {"description": "the answer", "headers": _GATEWAY_HEADERS, **_json(resp)}
    if stream:
        ok["content"]["text/event-stream"] = {"schema": _STR}
    return {"post": {"summary": summary, "parameters": _CALLER_PARAMS,
                     "requestBody": {"required": True, **_json(req)},
                     "responses": {"200": ok, **_errors(err, 400, 401, 404, 413, 415, 429, 502)}}}


def spec() -> dict[str, Any]:
    status = {"type": "object", "properties": {"status": _STR}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "llmrelay gateway", "version": __version__,
                 "description": "OpenAI- and Anthropic-compatible LLM gateway."},
        "components": {"securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"},
            "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"}}},
        "security": [{"bearer": []}, {"apiKey": []}],
        "paths": {
            "/v1/chat/completions": _post("Chat completion (OpenAI)", _CHAT_REQUEST, _CHAT_RESPONSE, _OPENAI_ERROR, True),
            "/v1/embeddings": _post("Embeddings (OpenAI)", {"type": "object", "required": ["model", "input"], "properties": {
                "model": _STR, "input": {"oneOf": [_STR, {"type": "array", "items": _STR, "minItems": 1}]},
                "encoding_format": {"enum": ["float", "base64"]}, "dimensions": {"type": "integer", "minimum": 1}}},
                {"type": "object", "properties": {"data": {"type": "array"}}}, _OPENAI_ERROR),
            "/v1/models": {"get": {"summary": "Public model names", "responses": {
                "200": {"description": "models", **_json({"type": "object", "properties": {
                    "object": {"const": "list"}, "data": {"type": "array", "items": {"type": "object"}}}})},
                **_errors(_OPENAI_ERROR, 401)}}},
            "/v1/messages": _post("Messages (Anthropic)", _MESSAGES_REQUEST, _MESSAGE_RESPONSE, _ANTHROPIC_ERROR, True),
            "/v1/messages/count_tokens": _post("Count input tokens (Anthropic)",
                                               {**_MESSAGES_REQUEST, "required": ["model", "messages"]},
                                               {"type": "object", "required": ["input_tokens"],
                                                "properties": {"input_tokens": {"type": "integer"}}}, _ANTHROPIC_ERROR),
            "/admin/keys": {
                "post": {"summary": "Create a virtual key (shown once)", "requestBody": {"required": True, **_json(_KEY_CREATE)},
                         "responses": {"201": {"description": "the key", **_json({"type": "object", "required": ["id", "key"],
                                                                               "properties": {"id": _STR, "key": _STR}})},
                                       **_errors(_OPENAI_ERROR, 400, 401, 403)}},
                "get": {"summary": "List virtual keys", "responses": {"200": {"description": "keys", **_json({"type": "object"})},
                                                                     **_errors(_OPENAI_ERROR, 401, 403)}}},
            "/admin/keys/{id}": {
                "parameters": [{"name": "id", "in": "path", "required": True, "schema": _STR}],
                "get": {"summary": "One key's record", "responses": {"200": {"description": "the key", **_json({"type": "object"})},
                                                                    **_errors(_OPENAI_ERROR, 401, 403, 404)}},
                "delete": {"summary": "Revoke a key (at once)", "responses": {
                    "200": {"description": "revoked", **_json({"type": "object"})}, **_errors(_OPENAI_ERROR, 401, 403, 404)}}},
            "/health/live": {"get": {"summary": "Liveness", "security": [], "responses": {"200": {"description": "alive", **_json(status)}}}},
            "/health/ready": {"get": {"summary": "Readiness", "security": [], "responses": {
                "200": {"description": "ready", **_json(status)},
                "503": {"description": "not ready, with reasons", **_json({"type": "object", "properties": {
                    "status": _STR, "reasons": {"type": "array", "items": _STR}}})}}}},
            "/metrics": {"get": {"summary": "Prometheus metrics", "security": [], "responses": {
                "200": {"description": "exposition text", "content": {"text/plain": {"schema": _STR}}}}}},
        },
    }


def register(gw: Gateway) -> None:
    from .openai_api import WIRE

    body = orjson.dumps(spec())

    async def serve(req: Request) -> Response:
        return Response(200, body)

    gw.route("GET", "/openapi.json", WIRE, serve)
