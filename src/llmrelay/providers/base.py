"""The provider contract.

A provider adapter turns a :class:`~llmrelay.types.ChatRequest` into its API's wire format and the
API's answers back into :class:`~llmrelay.types.ChatResult` / :class:`~llmrelay.types.Chunk`. The wire
mapping is pure functions, testable without HTTP; :class:`HTTPProvider` does the I/O around them.

Writing a provider for an HTTP API means filling in four methods:

    class EchoProvider(HTTPProvider):
        kind = "echo"
        capabilities = Capabilities(tools=False, vision=False)
        default_base_url = "http://127.0.0.1:9999"

        def to_wire(self, request, *, stream):
            body = {"prompt": request.messages[-1].text(), "stream": stream}
            return self.post("/echo", body)

        def from_wire(self, body):
            return ChatResult(id=body["id"], model=body["model"], text=body["text"])

        def stream_decoder(self):
            return EchoDecoder()            # feed(line) -> iterator of Chunk

        def map_error(self, status, headers, body):
            return error_for_status(status)(body.decode(errors="replace")[:500])

and registering it: ``llmrelay.providers.registry.register(EchoProvider)`` or an entry point in the
``llmrelay.providers`` group. The ``request.model`` a provider receives is already the upstream
model name (the router resolved the public name).
"""

from __future__ import annotations

import abc
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import orjson

from ..errors import (
    InvalidRequestError,
    LLMRelayError,
    ProviderResponseError,
    StreamInterruptedError,
    error_for_status,
)
from ..transport import HTTPRequest, HTTPResponse, PoolLimits, Transport, default_transport
from ..types import (
    ChatRequest,
    ChatResult,
    Chunk,
    EmbeddingRequest,
    EmbeddingResult,
    ModelInfo,
)


@dataclass(frozen=True, slots=True)
class Capabilities:
    streaming: bool = True
    tools: bool = True
    vision: bool = True
    embeddings: bool = False
    reasoning: bool = False
    json_schema: bool = True
    # Can continue a partial assistant answer given as the last message (stream recovery needs it).
    prefill: bool = False
    count_tokens: bool = False
    # Answers ``n > 1`` natively (several choices per call); others get n calls (providers/choices.py).
    choices: bool = False


@dataclass(frozen=True, slots=True)
class ProviderSettings:
    """What a provider instance needs from the config, resolved (env vars expanded)."""

    name: str
    kind: str
    base_url: str | None = None
    api_key: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout_s: float = 60.0
    # Seconds without a byte on an open stream before it counts as stalled.
    stall_timeout_s: float | None = 30.0
    limits: PoolLimits = field(default_factory=PoolLimits)
    # Kind-specific options (Azure api_version and deployment, OpenRouter headers, ...).
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class HealthStatus:
    ok: bool
    latency_ms: float | None = None
    detail: str = ""


class StreamDecoder(Protocol):
    """Turns the lines of an upstream stream into chunks; one instance per stream."""

    def feed(self, line: bytes) -> Iterator[Chunk]: ...

    def close(self) -> Iterator[Chunk]:
        """Called at the end of the body; raises StreamInterruptedError if the stream was cut."""
        ...


class Provider(abc.ABC):
    """The base provider interface: complete, stream, list models, health, capabilities."""

    kind: ClassVar[str]
    capabilities: ClassVar[Capabilities] = Capabilities()

    def answers_n_natively(self) -> bool:
        """Whether one call can return ``n > 1`` choices (else providers/choices.py fans out)."""
        return self.capabilities.choices
    default_base_url: ClassVar[str | None] = None

    def __init__(self, settings: ProviderSettings) -> None:
        self.settings = settings
        self.name = settings.name

    @abc.abstractmethod
    async def complete(self, request: ChatRequest) -> ChatResult: ...

    @abc.abstractmethod
    def stream(self, request: ChatRequest) -> AsyncIterator[Chunk]: ...

    async def list_models(self) -> list[ModelInfo]:
        return []

    async def health(self) -> HealthStatus:
        started = time.perf_counter()
        try:
            await self.list_models()
        except LLMRelayError as exc:
            return HealthStatus(False, detail=str(exc))
        return HealthStatus(True, latency_ms=(time.perf_counter() - started) * 1000)

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResult:
        raise InvalidRequestError(f"provider {self.name!r} ({self.kind}) has no embeddings endpoint")

    async def count_tokens(self, request: ChatRequest) -> int | None:
        """The exact prompt token count when the API can tell it, else None."""
        return None

    async def aclose(self) -> None:
        return None


class HTTPProvider(Provider):
    """A provider over HTTP: subclasses give the pure wire mapping, this class does the I/O."""

    def __init__(self, settings: ProviderSettings, transport: Transport | None = None) -> None:
        super().__init__(settings)
        self.base_url = (settings.base_url or self.default_base_url or "").rstrip("/")
        self.transport: Transport = transport or default_transport(settings.limits)

    # ---- the wire mapping: pure, override these -------------------------------------------------

    @abc.abstractmethod
    def to_wire(self, request: ChatRequest, *, stream: bool) -> HTTPRequest:
        """The HTTP request for a chat call."""

    @abc.abstractmethod
    def from_wire(self, body: Any) -> ChatResult:
        """A parsed JSON answer to a non-streamed call, as a result."""

    @abc.abstractmethod
    def stream_decoder(self) -> StreamDecoder:
        """A fresh decoder for one streamed answer."""

    @abc.abstractmethod
    def map_error(self, status: int, headers: Mapping[str, str], body: bytes) -> LLMRelayError:
        """The error for a non-2xx upstream answer."""

    # ---- helpers for subclasses ----------------------------------------------------------------

    def auth_headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.settings.api_key}"} if self.settings.api_key else {}

    def post(self, path: str, body: Any, *, stream: bool = False, headers: Mapping[str, str] | None = None) -> HTTPRequest:
        h = {"content-type": "application/json", **self.auth_headers(), **self.settings.headers}
        if stream:
            h["accept"] = "text/event-stream"
        if headers:
            h.update(headers)
        return HTTPRequest(
            "POST",
            self.base_url + path,
            h,
            orjson.dumps(body),
            read_timeout=self.settings.stall_timeout_s if stream else self.settings.timeout_s,
        )

    def parse_json(self, raw: bytes, what: str = "answer") -> Any:
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            snippet = raw[:120].decode("utf-8", errors="replace").strip()
            looks = "HTML" if snippet.lower().startswith(("<!doctype", "<html")) else "malformed JSON"
            raise ProviderResponseError(
                f"the upstream's {what} was {looks}, not JSON ({snippet!r}); check base_url",
                provider=self.name,
            ) from None

    # ---- the I/O -------------------------------------------------------------------------------

    async def _send(self, http: HTTPRequest) -> HTTPResponse:
        try:
            resp = await self.transport.send(http)
        except LLMRelayError as exc:
            exc.provider = exc.provider or self.name
            raise
        if resp.status >= 400:
            body = await resp.read()
            err = self.map_error(resp.status, resp.headers, body)
            err.provider = err.provider or self.name
            err.upstream_status = resp.status
            if err.retry_after is None:
                err.retry_after = retry_after_from(resp.headers)
            raise err
        return resp

    async def complete(self, request: ChatRequest) -> ChatResult:
        resp = await self._send(self.to_wire(request, stream=False))
        try:
            raw = await resp.read()
        except LLMRelayError as exc:
            exc.provider = exc.provider or self.name
            raise
        body = self.parse_json(raw)
        try:
            result = self.from_wire(body)
        except LLMRelayError:
            raise
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            raise ProviderResponseError(
                f"the upstream's answer did not have the expected shape ({type(exc).__name__}: {exc})",
                provider=self.name,
            ) from exc
        if result.provider is None:
            from dataclasses import replace

            result = replace(result, provider=self.name)
        return result

    async def stream(self, request: ChatRequest) -> AsyncIterator[Chunk]:
        resp = await self._send(self.to_wire(request, stream=True))
        decoder = self.stream_decoder()
        try:
            async for line in resp.aiter_lines():
                for chunk in decoder.feed(line):
                    yield chunk
            for chunk in decoder.close():
                yield chunk
        except LLMRelayError as exc:
            exc.provider = exc.provider or self.name
            raise
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            raise StreamInterruptedError(
                f"the upstream sent a malformed stream event ({type(exc).__name__}: {exc})",
                provider=self.name,
            ) from exc
        finally:
            await resp.aclose()

    async def aclose(self) -> None:
        await self.transport.aclose()


def retry_after_from(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait, from ``retry-after`` / ``retry-after-ms`` or a provider's reset header."""
    value = headers.get("retry-after-ms")
    if value:
        try:
            return float(value) / 1000.0
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value:
        try:
            return float(value)
        except ValueError:
            from email.utils import parsedate_to_datetime

            try:
                return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
            except (TypeError, ValueError):
                return None
    return None


def error_from_status(status: int, message: str, *, provider: str | None = None) -> LLMRelayError:
    return error_for_status(status)(message, provider=provider)
