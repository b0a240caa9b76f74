"""Google Gemini (Generative Language API, and Vertex AI through ``path_prefix``).

    providers:
      gemini: {kind: gemini, api_key: "${GEMINI_API_KEY}"}
      vertex:
        kind: gemini
        base_url: https://aiplatform.googleapis.com
        api_key: "${VERTEX_API_KEY}"          # express-mode key
        options: {path_prefix: /v1/publishers/google/models}

``base_url`` is the bare origin; calls go to ``{base}{path_prefix}/{model}:generateContent`` and
``:streamGenerateContent?alt=sse`` with the key in ``x-goog-api-key``. Options: ``api_version``
(default ``v1beta``), ``path_prefix`` (default ``/{api_version}/models``), ``schema_mode``
(``json_schema`` or ``openapi``, see :func:`~llmrelay.providers.gemini_wire.request_body`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

import orjson

from ..errors import (
    AuthenticationError,
    ContextWindowExceededError,
    InvalidRequestError,
    LLMRelayError,
    ModelNotFoundError,
    NotFoundError,
    PermissionDeniedError,
    ProviderError,
    ProviderResponseError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    RateLimitError,
    StreamInterruptedError,
    error_for_status,
)
from ..streaming import SSEDecoder
from ..transport import HTTPRequest
from ..types import (
    ChatRequest,
    ChatResult,
    Chunk,
    EmbeddingRequest,
    EmbeddingResult,
    FinishReason,
    ModelInfo,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from . import gemini_wire as wire
from .base import Capabilities, StreamDecoder
from .json_endpoints import JSONEndpointsProvider

# google.rpc status -> our error class, when the message says nothing more specific.
_BY_RPC_STATUS: dict[str, type[LLMRelayError]] = {
    "INVALID_ARGUMENT": InvalidRequestError,
    "FAILED_PRECONDITION": InvalidRequestError,
    "OUT_OF_RANGE": InvalidRequestError,
    "UNAUTHENTICATED": AuthenticationError,
    "PERMISSION_DENIED": PermissionDeniedError,
    "NOT_FOUND": ModelNotFoundError,
    "RESOURCE_EXHAUSTED": RateLimitError,
    "UNAVAILABLE": ProviderUnavailableError,
    "INTERNAL": ProviderError,
    "UNKNOWN": ProviderError,
    "DEADLINE_EXCEEDED": ProviderTimeoutError,
    "ABORTED": ProviderUnavailableError,
}

# Google reports an over-long prompt only in the message text ("The input token count (1200000)
# exceeds the maximum number of tokens allowed (1048576).").
_TOO_LONG = re.compile(r"exceeds the maximum number of tokens|input token count|context (window|length)", re.I)
_DURATION = re.compile(r"^\s*([0-9.]+)s\s*$")

_ADVICE: dict[type[LLMRelayError], str] = {
    AuthenticationError: "check the provider's api_key (GEMINI_API_KEY)",
    PermissionDeniedError: "check that the key's project may use this model and API",
    ModelNotFoundError: "check the model name (llmrelay models lists what the provider serves)",
    RateLimitError: "slow down or raise the project's quota",
    ContextWindowExceededError: "shorten the conversation or pick a model with a larger context",
}


class GeminiProvider(JSONEndpointsProvider):
    kind = "gemini"
    capabilities = Capabilities(embeddings=True, reasoning=True, count_tokens=True)
    default_base_url = "https://generativelanguage.googleapis.com"

    @property
    def _version(self) -> str:
        return str(self.settings.options.get("api_version") or "v1beta")

    @property
    def _prefix(self) -> str:
        return str(self.settings.options.get("path_prefix") or f"/{self._version}/models").rstrip("/")

    def auth_headers(self) -> dict[str, str]:
        return {"x-goog-api-key": self.settings.api_key} if self.settings.api_key else {}

    def _model_path(self, model: str, method: str) -> str:
        return f"{self._prefix}/{model.removeprefix('models/')}:{method}"

    # ---- wire mapping ----------------------------------------------------------------------------

    def to_wire(self, request: ChatRequest, *, stream: bool) -> HTTPRequest:
        mode = str(self.settings.options.get("schema_mode") or "json_schema")
        body = wire.request_body(request, schema_mode=mode)
        if stream:
            return self.post(self._model_path(request.model, "streamGenerateContent?alt=sse"), body, stream=True)
        return self.post(self._model_path(request.model, "generateContent"), body)

    def from_wire(self, body: Any) -> ChatResult:
        return result_from_body(body)

    def stream_decoder(self) -> StreamDecoder:
        return GeminiStreamDecoder()

    def map_error(self, status: int, headers: Mapping[str, str], body: bytes) -> LLMRelayError:
        return error_from_body(status, body)

    # ---- other endpoints -------------------------------------------------------------------------

    async def list_models(self) -> list[ModelInfo]:
        models: list[ModelInfo] = []
        token = ""
        for _ in range(20):  # the API pages at 1000 at most; 20 pages is far beyond any listing
            query = f"?pageSize=1000&pageToken={token}" if token else "?pageSize=1000"
            body = await self._json(self._get(f"/{self._version}/models{query}"))
            for m in body.get("models") or ():
                models.append(
                    ModelInfo(
                        id=str(m.get("name", "")).removeprefix("models/"),
                        provider=self.name,
                        context_window=m.get("inputTokenLimit"),
                        max_output_tokens=m.get("outputTokenLimit"),
                    )
                )
            token = body.get("nextPageToken") or ""
            if not token:
                break
        return models

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResult:
        model = request.model.removeprefix("models/")
        items: list[dict[str, Any]] = []
        for text in request.input:
            item: dict[str, Any] = {"model": f"models/{model}", "content": {"parts": [{"text": text}]}}
            if request.dimensions:
                item["outputDimensionality"] = request.dimensions
            items.append(item)
        body = await self._json(self.post(self._model_path(model, "batchEmbedContents"), {"requests": items}))
        vectors = tuple(tuple(float(x) for x in e.get("values", ())) for e in body.get("embeddings", ()))
        if len(vectors) != len(request.input):
            raise ProviderResponseError(
                f"asked for {len(request.input)} embeddings, got {len(vectors)}", provider=self.name
            )
        return EmbeddingResult(model=request.model, vectors=vectors, usage=Usage(), provider=self.name)

    async def count_tokens(self, request: ChatRequest) -> int | None:
        model = request.model.removeprefix("models/")
        inner = wire.request_body(request, schema_mode=str(self.settings.options.get("schema_mode") or "json_schema"))
        inner.pop("generationConfig", None)  # countTokens rejects generation settings it cannot count
        body = {"generateContentRequest": {"model": f"models/{model}", **inner}}
        answer = await self._json(self.post(self._model_path(model, "countTokens"), body))
        return int(answer["totalTokens"]) if "totalTokens" in answer else None


# ------------------------------------------------------------------------------------ answers


def result_from_body(body: Mapping[str, Any]) -> ChatResult:
    """A whole generateContent answer as a result."""
    if "error" in body:
        raise error_from_json(500, body)
    reader = wire.PartReader(str(body.get("responseId") or ""))
    candidate = wire.first_candidate(body)
    text: list[str] = []
    reasoning: list[str] = []
    calls: list[ToolCallDelta] = []
    for chunk in reader.chunks((candidate.get("content") or {}).get("parts") or ()):
        text.append(chunk.text)
        reasoning.append(chunk.reasoning)
        calls.extend(chunk.tool_calls)
    finish: FinishReason = wire.finish_reason(candidate.get("finishReason"), has_calls=bool(calls)) or "stop"
    if not candidate and wire.block_reason(body):
        finish = "content_filter"
    return ChatResult(
        id=str(body.get("responseId") or ""),
        model=str(body.get("modelVersion") or "").removeprefix("models/"),
        text="".join(text),
        tool_calls=tuple(ToolCall(id=c.id or "", name=c.name or "", arguments=c.arguments) for c in calls),
        finish_reason=finish,
        usage=wire.usage_from(body.get("usageMetadata")) or Usage(),
        reasoning="".join(reasoning),
        reasoning_signature=reader.signature,
    )


class GeminiStreamDecoder:
    """Decodes ``streamGenerateContent?alt=sse``: each event is a partial GenerateContentResponse.

    ``usageMetadata`` repeats cumulatively on every event, so only the last one counts; it goes out
    once, with the finish reason, when the body ends. A body that ends without a finish reason (or
    without any event) was cut short.
    """

    __slots__ = ("_finish", "_first", "_reader", "_sse", "_usage")

    def __init__(self) -> None:
        self._sse = SSEDecoder()
        self._reader: wire.PartReader | None = None
        self._finish: str | None = None
        self._usage: Usage | None = None
        self._first = True

    def feed(self, line: bytes) -> Iterator[Chunk]:
        for event in self._sse.feed(line):
            yield from self._event(event.data)

    def _event(self, data: str) -> Iterator[Chunk]:
        if not data.strip():
            return
        try:
            body = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise StreamInterruptedError(f"the upstream sent a malformed stream event ({data[:80]!r})") from None
        if isinstance(body, list):  # errors mid-stream may come as a one-element JSON array
            body = body[0] if body else {}
        if "error" in body:
            raise error_from_json(500, body)
        if self._reader is None:
            self._reader = wire.PartReader(str(body.get("responseId") or ""))
        if body.get("usageMetadata"):
            self._usage = wire.usage_from(body["usageMetadata"])
        candidate = wire.first_candidate(body)
        if self._first:
            self._first = False
            model = str(body.get("modelVersion") or "").removeprefix("models/") or None
            yield Chunk(id=body.get("responseId"), model=model)
        yield from self._reader.chunks((candidate.get("content") or {}).get("parts") or ())
        if candidate.get("finishReason"):
            self._finish = candidate["finishReason"]
        elif not candidate and wire.block_reason(body):
            self._finish = "SAFETY"

    def close(self) -> Iterator[Chunk]:
        for event in self._sse.flush():
            yield from self._event(event.data)
        if self._finish is None:
            raise StreamInterruptedError("the upstream's stream ended before the answer was finished")
        has_calls = bool(self._reader and self._reader.calls)
        finish = wire.finish_reason(self._finish, has_calls=has_calls) or "stop"
        yield Chunk(finish_reason=finish, usage=self._usage)


# ------------------------------------------------------------------------------------- errors


def error_from_body(status: int, raw: bytes) -> LLMRelayError:
    """The error for a non-2xx answer: Google's ``{"error": {code, message, status, details}}``,
    or an HTML page from a proxy or load balancer."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        snippet = raw[:200].decode("utf-8", errors="replace").strip()
        kind = "an HTML page" if snippet.lower().startswith(("<!doctype", "<html")) else "a non-JSON body"
        cls = error_for_status(status)
        return cls(f"the upstream answered HTTP {status} with {kind} ({snippet[:80]!r}); check base_url")
    if isinstance(body, list):
        body = body[0] if body else {}
    return error_from_json(status, body if isinstance(body, Mapping) else {})


def error_from_json(status: int, body: Mapping[str, Any]) -> LLMRelayError:
    err = body.get("error") or {}
    if not isinstance(err, Mapping):
        err = {"message": str(err)}
    message = str(err.get("message") or f"HTTP {status}")
    rpc = str(err.get("status") or "")
    details = err.get("details") or ()
    reasons = {d.get("reason") for d in details if isinstance(d, Mapping)}
    cls = _BY_RPC_STATUS.get(rpc) or error_for_status(int(err.get("code") or status))
    if "API_KEY_INVALID" in reasons or "API_KEY_EXPIRED" in reasons:
        cls = AuthenticationError  # Google answers a bad key with 400 INVALID_ARGUMENT
    elif issubclass(cls, InvalidRequestError) and _TOO_LONG.search(message):
        cls = ContextWindowExceededError
    elif rpc == "NOT_FOUND" and "model" not in message.lower():
        cls = NotFoundError
    advice = _ADVICE.get(cls)
    error = cls(f"{message} ({advice})" if advice else message)
    error.retry_after = _retry_delay(details)
    return error


def _retry_delay(details: Any) -> float | None:
    for d in details or ():
        if isinstance(d, Mapping) and str(d.get("@type", "")).endswith("google.rpc.RetryInfo"):
            match = _DURATION.match(str(d.get("retryDelay", "")))
            if match:
                return float(match.group(1))
    return None
