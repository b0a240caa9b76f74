"""The OpenAI Chat Completions adapter, which also serves every OpenAI-compatible server.

    from llmrelay.providers.base import ProviderSettings
    from llmrelay.providers.openai import OpenAIProvider

    groq = OpenAIProvider(ProviderSettings(name="groq", kind="groq",
                                           base_url="https://api.groq.com/openai/v1", api_key="gsk_..."))
    result = await groq.complete(ChatRequest(model="llama-3.3-70b-versatile",
                                             messages=(Message.user("Hi"),)))

Presets (``providers/presets.py``) give each compatible server its base URL and dialect options
(see :class:`~llmrelay.providers.openai_wire.WireOptions`). Options this class reads itself:

- ``azure: true`` with ``deployment`` and ``api_version``: Azure OpenAI's
  ``{base_url}/openai/deployments/{deployment}/chat/completions?api-version=...`` and ``api-key``
  header (the deployment defaults to the request's model name). Azure's newer ``/openai/v1`` API is
  plain OpenAI: use ``kind: openai`` with that base URL.
- ``referer`` / ``title``: OpenRouter's app attribution headers (``HTTP-Referer``, ``X-Title``).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, ClassVar
from urllib.parse import quote

import orjson

from ..errors import LLMRelayError, ProviderResponseError
from ..transport import HTTPRequest, Transport
from ..types import ChatRequest, ChatResult, EmbeddingRequest, EmbeddingResult, ModelInfo, Usage
from .base import Capabilities, HTTPProvider, ProviderSettings, StreamDecoder
from .openai_errors import error_from_payload, map_openai_error
from .openai_passthrough import forwarded_body
from .openai_stream import OpenAIStreamDecoder
from .openai_wire import WireOptions, chat_body, result_from_body, usage_from_wire

AZURE_API_VERSION = "2024-10-21"


class OpenAIProvider(HTTPProvider):
    kind: ClassVar[str] = "openai"
    capabilities: ClassVar[Capabilities] = Capabilities(embeddings=True, reasoning=True, choices=True)
    default_base_url: ClassVar[str | None] = "https://api.openai.com/v1"

    def __init__(self, settings: ProviderSettings, transport: Transport | None = None) -> None:
        super().__init__(settings, transport)
        opts = settings.options
        self.wire = WireOptions.from_options(opts)
        self.azure = bool(opts.get("azure"))
        self.api_version = str(opts.get("api_version") or AZURE_API_VERSION)
        self.deployment: str | None = opts.get("deployment")
        # Many compatible servers reject ``n > 1`` (Groq, llama.cpp) or ignore it (OpenRouter):
        # their presets set ``native_n: false`` and the gateway makes n calls instead.
        self._native_n = bool(opts.get("native_n", True))
        self._extra_headers: dict[str, str] = {}
        if opts.get("referer"):
            self._extra_headers["HTTP-Referer"] = str(opts["referer"])
        if opts.get("title"):
            self._extra_headers["X-Title"] = str(opts["title"])
        self._headers_of: ProviderSettings | None = None
        self._header_sets: dict[tuple[bool, bool], Mapping[str, str]] = {}

    def answers_n_natively(self) -> bool:
        return self._native_n

    # ---- addressing ----------------------------------------------------------------------------

    def auth_headers(self) -> dict[str, str]:
        if self.azure and self.settings.api_key:
            return {"api-key": self.settings.api_key}
        return super().auth_headers()

    def url(self, endpoint: str, model: str | None = None) -> str:
        """The URL of ``endpoint`` (``chat/completions``, ``embeddings``, ``models``)."""
        if not self.azure:
            return f"{self.base_url}/{endpoint}"
        version = quote(self.api_version)
        if endpoint == "models":
            return f"{self.base_url}/openai/models?api-version={version}"
        deployment = quote(self.deployment or model or "", safe="")
        return f"{self.base_url}/openai/deployments/{deployment}/{endpoint}?api-version={version}"

    def _request(self, method: str, url: str, body: Any = None, *, stream: bool = False) -> HTTPRequest:
        return self._request_bytes(method, url, orjson.dumps(body) if body is not None else None, stream=stream)

    def _request_bytes(self, method: str, url: str, data: bytes | None, *, stream: bool = False) -> HTTPRequest:
        return HTTPRequest(
            method,
            url,
            self._headers(data is not None, stream),
            data,
            read_timeout=self.settings.stall_timeout_s if stream else self.settings.timeout_s,
        )

    def _headers(self, has_body: bool, stream: bool) -> Mapping[str, str]:
        """The request headers, built once per kind of request from the (immutable) settings and
        handed out read-only: a transport may then encode them once too (transport_h1)."""
        if self._headers_of is not self.settings:  # settings replaced (tests do): build anew
            self._headers_of, self._header_sets = self.settings, {}
        key = (has_body, stream)
        found = self._header_sets.get(key)
        if found is None:
            headers = {**self.auth_headers(), **self._extra_headers, **self.settings.headers}
            if has_body:
                headers["content-type"] = "application/json"
            if stream:
                headers["accept"] = "text/event-stream"
            found = self._header_sets[key] = MappingProxyType(headers)
        return found

    # ---- the wire mapping ----------------------------------------------------------------------

    def to_wire(self, request: ChatRequest, *, stream: bool) -> HTTPRequest:
        # The fast path: the caller's own bytes when the request is theirs but for the model.
        data = forwarded_body(request, stream=stream, opts=self.wire)
        if data is None:
            data = orjson.dumps(chat_body(request, stream=stream, opts=self.wire))
        return self._request_bytes("POST", self.url("chat/completions", request.model), data, stream=stream)

    def from_wire(self, body: Any) -> ChatResult:
        if isinstance(body, Mapping) and body.get("error") and not body.get("choices"):
            # OpenRouter and some proxies answer 200 with an error body.
            raise error_from_payload(body, None, provider=self.name)
        if not isinstance(body, Mapping) or not body.get("choices"):
            raise ProviderResponseError("the upstream's answer had no choices", provider=self.name)
        return result_from_body(body, self.name)

    def stream_decoder(self) -> StreamDecoder:
        return OpenAIStreamDecoder(self.name)

    def map_error(self, status: int, headers: Mapping[str, str], body: bytes) -> LLMRelayError:
        return map_openai_error(status, headers, body, provider=self.name)

    # ---- other endpoints -----------------------------------------------------------------------

    async def _json(self, http: HTTPRequest, what: str) -> Any:
        resp = await self._send(http)
        try:
            raw = await resp.read()
        except LLMRelayError as exc:
            exc.provider = exc.provider or self.name
            raise
        return self.parse_json(raw, what)

    async def list_models(self) -> list[ModelInfo]:
        body = await self._json(self._request("GET", self.url("models")), "model list")
        data = body.get("data") if isinstance(body, Mapping) else body
        if not isinstance(data, list):
            raise ProviderResponseError("the upstream's model list had no 'data' array", provider=self.name)
        return [
            ModelInfo(id=str(m["id"]), provider=self.name, context_window=_context_window(m))
            for m in data
            if isinstance(m, Mapping) and m.get("id")
        ]

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResult:
        body: dict[str, Any] = {"model": request.model, "input": list(request.input), "encoding_format": "float"}
        if request.dimensions is not None:
            body["dimensions"] = request.dimensions
        if request.user is not None:
            body["user"] = request.user
        answer = await self._json(self._request("POST", self.url("embeddings", request.model), body), "embeddings")
        try:
            rows = sorted(answer["data"], key=lambda d: d.get("index", 0))
            vectors = tuple(tuple(float(x) for x in row["embedding"]) for row in rows)
        except (KeyError, TypeError, ValueError) as exc:
            raise ProviderResponseError(
                f"the upstream's embeddings answer did not have the expected shape ({exc!r})", provider=self.name
            ) from exc
        return EmbeddingResult(
            model=str(answer.get("model") or request.model),
            vectors=vectors,
            usage=usage_from_wire(answer.get("usage")) or Usage(),
            provider=self.name,
        )


def _context_window(model: Mapping[str, Any]) -> int | None:
    # OpenAI lists none; OpenRouter says context_length, vLLM max_model_len, Groq context_window.
    for key in ("context_length", "context_window", "max_model_len"):
        value = model.get(key)
        if isinstance(value, int):
            return value
    return None
