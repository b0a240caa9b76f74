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


def _get(summary: str, schema: dict[str, Any], params: list[dict[str, Any]] | None = None,
         codes: tuple[int, ...] = (401, 403), description: str = "") -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "parameters": params or [], "responses": {
        "200": {"description": description or "the answer", **_json(schema)}, **_errors(_OPENAI_ERROR, *codes)}}
    return {"get": op}


def _q(name: str, schema: dict[str, Any], description: str, required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": schema, "description": description}


_OBJ: dict[str, Any] = {"type": "object"}
_NUM: dict[str, Any] = {"type": "number"}
_LIST = {"type": "object", "properties": {"object": {"const": "list"}, "data": {"type": "array", "items": _OBJ}}}
_SINCE = _q("since", _STR, "window: 30m, 24h, 7d, 2w")
_VERIFY = {"type": "object", "required": ["ok", "checked"], "properties": {
    "ok": {"type": "boolean"}, "checked": {"type": "integer"}, "first_bad_id": {"type": ["integer", "null"]},
    "reason": {"type": ["string", "null"]}, "head": {"type": ["string", "null"]}, "head_id": {"type": ["integer", "null"]}}}
_BUDGET = {"type": "object", "properties": {
    "scope": _STR, "id": _STR, "source": {"enum": ["config", "key"]}, "period": _STR, "period_label": _STR,
    "limit_usd": _NUM, "counted_usd": {"type": "number", "description": "what the budget counter enforces: "
                                        "settled spend plus reservations of calls in flight"},
    "spent_usd": {"type": ["number", "null"], "description": "settled spend in the usage ledger"},
    "reserved_usd": {"type": ["number", "null"]}, "remaining_usd": _NUM, "fraction": _NUM}}
_BRAKE = {"type": "object", "properties": {"configured": {"type": "boolean"}, "tripped": {"type": "boolean"},
                                           "max_usd": {"type": ["number", "null"]}, "window_s": {"type": ["number", "null"]}}}
_BRAKE_RESET = {"post": {"summary": "Lift a tripped emergency brake (audited)", "responses": {
    "200": {"description": "reset", **_json({"type": "object", "properties": {
        "reset": {"type": "boolean"}, "was_tripped": {"type": "boolean"}, "brake": _BRAKE}})},
    **_errors(_OPENAI_ERROR, 401, 403)}}}


def admin_paths() -> dict[str, Any]:
    """The admin API beyond keys (server/admin*.py); every route needs the master key."""
    dims = "comma-separated: model, provider, key, user, team, day, group, status, session"
    return {
        "/admin/reload": {"post": {"summary": "Re-read the config file", "responses": {
            "200": {"description": "applied", **_json(_OBJ)}, "422": {"description": "refused; the running config stays",
                                                                     **_json(_OBJ)}, **_errors(_OPENAI_ERROR, 401, 403)}}},
        "/admin/cache": {"delete": {"summary": "Clear the response cache (audited)", "parameters": [
            _q("model", _STR, "only this model group"), _q("key", _STR, "only this cache entry")],
            "responses": {"200": {"description": "cleared", **_json(_OBJ)}, **_errors(_OPENAI_ERROR, 401, 403)}}},
        "/admin/router": _get("Circuit states and deployment stats", _LIST),
        "/admin/usage": {"get": {**_get("Spend and usage from the ledger", _OBJ, [
            _SINCE, _q("by", _STR, dims), _q("format", {"enum": ["json", "csv"]}, "json (default) or csv"),
            *(_q(f, _STR, f"only this {f}") for f in ("user", "key", "team", "group", "provider", "model")),
            _q("limit", {"type": "integer", "minimum": 1, "maximum": 10000}, "groups per page (default 1000)"),
            _q("offset", {"type": "integer", "minimum": 0}, "groups to skip, costliest first")],
            (400, 401, 403, 503))["get"], "description": "rows, total, trend, month to date, forecast and "
                                                         "recommendations; 503 when queued ledger rows cannot be written"}},
        "/admin/usage/forecast": _get("Month to date, month-end forecast and daily trend", {"type": "object", "properties": {
            "month_to_date_usd": _NUM, "forecast_month_usd": _NUM, "trend": {"type": "array", "items": _OBJ}}},
            [_SINCE], (400, 401, 403, 503)),
        "/admin/usage/recommendations": _get("Money-saving recommendations, largest first", _LIST, [_SINCE],
                                             (400, 401, 403, 503)),
        "/admin/budgets": _get("Every budget in force, with spend, and the emergency brake", {"type": "object", "properties": {
            "data": {"type": "array", "items": _BUDGET}, "brake": _BRAKE, "ledger_pending_rows": {"type": "integer"}}}),
        "/admin/budgets/brake/reset": _BRAKE_RESET,
        "/admin/budgets/reset-brake": {"post": {**_BRAKE_RESET["post"], "summary": "Same as /admin/budgets/brake/reset"}},
        "/admin/audit/verify": _get("Check the audit log's hash chain", _VERIFY, [
            _q("head", _STR, "an exported head mac that must still be in the chain (catches truncation)")], (401, 403, 404),
            "always 200 when the check ran: ok is false, with the first bad entry and why, when the chain is broken "
            "(404 when the audit log is off)"),
        "/admin/audit/head": _get("The chain head, for anchoring outside", {"type": "object", "properties": {
            "id": {"type": "integer"}, "mac": _STR, "ts": {"type": ["number", "null"]}}}, codes=(401, 403, 404)),
        "/admin/audit/entries": _get("Recent audit entries, newest first (users as pseudonyms)", _LIST, [
            _q("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "default 100"),
            _q("kind", _STR, "a kind and its sub-kinds, e.g. admin or safety"),
            _q("before", {"type": "integer"}, "entries older than this id (paging: next_before)")], (400, 401, 403, 404)),
        "/admin/privacy/export": _get("Everything held about a user, per store", {"type": "object", "properties": {
            "user": _STR, "stores": _OBJ}}, [_q("user", _STR, "the user id", True)], (400, 401, 403)),
        "/admin/privacy/erase": {"post": {"summary": "Erase a user from every store (audited without the user)",
                                          "requestBody": {"required": True, **_json({"type": "object", "required": ["user"],
                                                                                      "properties": {"user": _STR}})},
                                          "responses": {"200": {"description": "erased", **_json({"type": "object", "properties": {
                                              "erased": {"type": "boolean"}, "stores": _OBJ}})},
                                              **_errors(_OPENAI_ERROR, 400, 401, 403)}}},
    }


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
            **admin_paths(),
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
