"""The Gemini API under ``/gemini/v1beta``: ``models/{m}:generateContent``, ``:streamGenerateContent``
(SSE with ``alt=sse``, else a JSON array), ``:countTokens``, ``:embedContent``, ``:batchEmbedContents``,
and the model list.

Gemini counts thoughts apart: ``candidatesTokenCount`` excludes ``thoughtsTokenCount``. Thought text is
sent (as parts with ``thought: true``) only when ``thinkingConfig.includeThoughts`` is set.
"""

from __future__ import annotations

import base64
from typing import Any

from .answer import Answer, Prompt, ToolSpec, compose
from .exchange import SSE, Dialect, Exchange, Handler, Headers, Reply, SimError, dumps
from .vectors import embed

BASE = "/gemini/v1beta/models"
MODELS = ("gemini-2.5-flash", "gemini-2.5-pro", "gemini-2.0-flash", "sim-model", "text-embedding-004")
_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
           409: "ABORTED", 429: "RESOURCE_EXHAUSTED", 499: "CANCELLED", 500: "INTERNAL", 501: "NOT_IMPLEMENTED",
           503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}
_FINISH = {"stop": "STOP", "length": "MAX_TOKENS", "tool_calls": "STOP"}


def _get(obj: Any, camel: str, default: Any = None) -> Any:
    """A field by its camelCase name or its snake_case twin: proto JSON accepts both, and so do we."""
    if not isinstance(obj, dict):
        return default
    if camel in obj:
        return obj[camel]
    snake = "".join("_" + c.lower() if c.isupper() else c for c in camel)
    return obj.get(snake, default)


def _parts_text(parts: Any) -> tuple[str, int, list[str]]:
    """Text, image count and function-response texts of a list of parts."""
    texts, images, results = [], 0, []
    for part in parts or ():
        if "text" in part and not part.get("thought"):
            texts.append(str(part["text"]))
        elif _get(part, "inlineData") or _get(part, "fileData"):
            images += 1
        elif call := _get(part, "functionCall"):
            texts.append(call.get("name", "") + dumps(call.get("args", {})).decode())
        elif response := _get(part, "functionResponse"):
            results.append(dumps(response.get("response", {})).decode())
    return " ".join(texts), images, results


def to_prompt(body: dict[str, Any]) -> Prompt:
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        raise SimError(400, "* GenerateContentRequest.contents: contents is not specified")
    system = _get(body, "systemInstruction") or {}
    texts = [_parts_text(system.get("parts"))[0]] if system else []
    images, last_user, results = 0, "", []
    for c in contents:
        text, n, res = _parts_text(c.get("parts"))
        texts += [text, *res]
        images += n
        results = res
        if c.get("role", "user") == "user" and not res:
            last_user = text
    tools = tuple(
        ToolSpec(f["name"], _get(f, "parametersJsonSchema") or f.get("parameters") or {})
        for t in body.get("tools") or () for f in _get(t, "functionDeclarations") or ()
    )
    config = _get(body, "generationConfig") or {}
    thinking = _get(config, "thinkingConfig") or {}
    reasoning = bool(_get(thinking, "includeThoughts") or _get(thinking, "thinkingBudget") or _get(thinking, "thinkingLevel"))
    return Prompt(texts=tuple(texts), last_user=last_user, n_messages=len(contents), images=images, tools=tools,
                  tool_choice=_tool_choice(_get(body, "toolConfig")), tool_results=tuple(results),
                  reasoning=reasoning, max_tokens=_get(config, "maxOutputTokens"))


def _tool_choice(config: Any) -> str:
    fc = _get(config, "functionCallingConfig") or {}
    mode = str(fc.get("mode", "AUTO")).upper()
    if mode == "NONE":
        return "none"
    allowed = _get(fc, "allowedFunctionNames")
    if mode in ("ANY", "VALIDATED") and allowed:
        return str(allowed[0])
    return "required" if mode == "ANY" else "auto"


def usage(a: Answer, final: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"promptTokenCount": a.input_tokens}
    if final:
        out["candidatesTokenCount"] = a.output_tokens - a.reasoning_tokens
    out["totalTokenCount"] = a.total_tokens if final else a.input_tokens
    if a.cached_tokens:
        out["cachedContentTokenCount"] = a.cached_tokens
    out["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": a.input_tokens}]
    if final and a.reasoning_tokens:
        out["thoughtsTokenCount"] = a.reasoning_tokens
    return out


class GeminiDialect(Dialect):
    name = "gemini"

    def routes(self) -> dict[tuple[str, str], Handler]:
        return {("GET", BASE): self.models}

    def match(self, method: str, path: str) -> tuple[Handler, str, dict[str, str]] | None:
        if not path.startswith(BASE + "/"):
            return None
        model, _, action = path[len(BASE) + 1 :].partition(":")
        handlers: dict[str, Handler] = {
            "generateContent": self.generate, "streamGenerateContent": self.generate, "countTokens": self.count_tokens,
            "embedContent": self.embed_content, "batchEmbedContents": self.batch_embed}
        handler = handlers.get(action) if method == "POST" else (self.model_info if not action else None)
        return (handler, handler.__name__, {"model": model, "action": action}) if handler else None

    def model_of(self, ex: Exchange) -> str | None:
        return ex.params.get("model")

    def check_auth(self, ex: Exchange) -> None:
        key = ex.headers.get("x-goog-api-key") or ex.query.get("key")
        if not key:
            raise SimError(403, "Method doesn't allow unregistered callers (callers without established identity).")
        if key.startswith("invalid"):
            raise SimError(400, "API key not valid. Please pass a valid API key.")

    def error(self, status: int, message: str) -> Reply:
        body = {"error": {"code": status, "message": message, "status": _STATUS.get(status, "UNKNOWN")}}
        return Reply(status=status, body=dumps(body))

    def rate_headers(self, remaining_requests: int, reset_s: float, tokens: int, now: float) -> Headers:
        return [(b"server-timing", b"gfet4t7; dur=1")]

    def _model(self, ex: Exchange) -> str:
        if not ex.model or ex.model.startswith("unknown"):
            raise SimError(404, f"models/{ex.model} is not found for API version v1beta, or is not supported.")
        return ex.model

    async def generate(self, ex: Exchange) -> Reply:
        model = self._model(ex)
        answer = compose(to_prompt(ex.body), ex.options)
        thoughts = bool(_get(_get(_get(ex.body, "generationConfig"), "thinkingConfig"), "includeThoughts"))
        rid = base64.urlsafe_b64encode(bytes.fromhex(answer.digest[:30])).decode()
        if ex.params["action"] == "generateContent":
            return Reply(body=dumps(_response(answer, _parts(answer, thoughts), model, rid, True)))
        chunks = _stream(answer, thoughts, model, rid)
        if ex.query.get("alt") == "sse":
            return Reply(frames=[b"data: " + dumps(c) + b"\r\n\r\n" for c in chunks], content_type=SSE)
        return Reply(body=dumps(chunks))

    async def count_tokens(self, ex: Exchange) -> Reply:
        self._model(ex)
        body = _get(ex.body, "generateContentRequest") or ex.body
        n = compose(to_prompt(body), ex.options).input_tokens
        return Reply(body=dumps({"totalTokens": n, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": n}]}))

    async def embed_content(self, ex: Exchange) -> Reply:
        self._model(ex)
        return Reply(body=dumps({"embedding": {"values": _embed_one(ex.body)}}))

    async def batch_embed(self, ex: Exchange) -> Reply:
        self._model(ex)
        requests = ex.body.get("requests")
        if not isinstance(requests, list) or not requests:
            raise SimError(400, "* BatchEmbedContentsRequest.requests: at least one request is required")
        return Reply(body=dumps({"embeddings": [{"values": _embed_one(r)} for r in requests]}))

    async def models(self, ex: Exchange) -> Reply:
        return Reply(body=dumps({"models": [_model_info(m) for m in MODELS]}))

    async def model_info(self, ex: Exchange) -> Reply:
        return Reply(body=dumps(_model_info(self._model(ex))))


def _model_info(model: str) -> dict[str, Any]:
    embedding = "embedding" in model
    methods = ["embedContent", "batchEmbedContents"] if embedding else ["generateContent", "countTokens"]
    return {"name": f"models/{model}", "version": "001", "displayName": model, "description": "Simulated model",
            "inputTokenLimit": 1_048_576, "outputTokenLimit": 65_536, "supportedGenerationMethods": methods}


def _embed_one(request: dict[str, Any]) -> list[float]:
    text = _parts_text((request.get("content") or {}).get("parts"))[0]
    return embed(text, int(_get(request, "outputDimensionality") or 768))


def _parts(a: Answer, thoughts: bool) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = [{"text": a.reasoning, "thought": True}] if thoughts and a.reasoning else []
    if a.text:
        parts.append({"text": a.text})
    parts += [{"functionCall": {"name": c.name, "args": c.arguments}} for c in a.calls]
    return parts


def _response(a: Answer, parts: list[dict[str, Any]], model: str, rid: str, final: bool) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}}
    if final:
        candidate["finishReason"] = _FINISH[a.finish]
    candidate["index"] = 0
    return {"candidates": [candidate], "usageMetadata": usage(a, final), "modelVersion": model, "responseId": rid}


def _stream(a: Answer, thoughts: bool, model: str, rid: str) -> list[dict[str, Any]]:
    parts: list[list[dict[str, Any]]] = []
    if thoughts:
        parts += [[{"text": p, "thought": True}] for p in a.reasoning_pieces]
    parts += [[{"text": p}] for p in a.pieces]
    calls = [{"functionCall": {"name": c.name, "args": c.arguments}} for c in a.calls]
    if calls:
        parts.append(calls)
    if not parts:
        parts.append([{"text": ""}])
    last = len(parts) - 1
    return [_response(a, p, model, rid, i == last) for i, p in enumerate(parts)]


