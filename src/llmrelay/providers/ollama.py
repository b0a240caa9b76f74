"""Ollama's native API (``/api/chat``, newline-delimited JSON streams).

    providers:
      local: {kind: ollama, base_url: "http://127.0.0.1:11434"}

``base_url`` is the bare origin, as in the official ``ollama`` SDK. Request bodies have the shape
that SDK sends: ``messages`` (images as base64 strings, tool-call arguments as objects, tool
results with ``tool_name``), ``tools``, ``format``, ``options``, ``think``, ``stream``. Anything in
``ChatRequest.extra`` goes through as is (``keep_alive``, ``options`` entries such as ``num_ctx``).
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import orjson

from ..errors import (
    InvalidRequestError,
    LLMRelayError,
    ModelNotFoundError,
    StreamInterruptedError,
    error_for_status,
)
from ..transport import HTTPRequest
from ..types import (
    ChatRequest,
    ChatResult,
    Chunk,
    DocumentPart,
    EmbeddingRequest,
    EmbeddingResult,
    FinishReason,
    ImagePart,
    Message,
    ModelInfo,
    Part,
    TextPart,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from .base import Capabilities, HealthStatus, StreamDecoder
from .json_endpoints import JSONEndpointsProvider

_FINISH: dict[str, FinishReason] = {"stop": "stop", "length": "length", "load": "stop", "unload": "stop"}


class OllamaProvider(JSONEndpointsProvider):
    kind = "ollama"
    capabilities = Capabilities(embeddings=True, reasoning=True)
    default_base_url = "http://127.0.0.1:11434"

    def to_wire(self, request: ChatRequest, *, stream: bool) -> HTTPRequest:
        return self.post("/api/chat", request_body(request, stream=stream), stream=stream)

    def post(self, path: str, body: Any, *, stream: bool = False, headers: Mapping[str, str] | None = None) -> HTTPRequest:
        http = super().post(path, body, stream=stream, headers=headers)
        if stream:
            # The stream is NDJSON, not SSE; say so rather than inherit the SSE accept header.
            headers = {**http.headers, "accept": "application/x-ndjson"}
            http = HTTPRequest(http.method, http.url, headers, http.body, http.read_timeout)
        return http

    def from_wire(self, body: Any) -> ChatResult:
        dec = OllamaStreamDecoder()
        chunks = [*dec.line(body), *dec.close()]
        calls = [d for c in chunks for d in c.tool_calls]
        finish: FinishReason = next((c.finish_reason for c in chunks if c.finish_reason), "stop")
        return ChatResult(
            id=dec.id,
            model=str(body.get("model") or ""),
            text="".join(c.text for c in chunks),
            tool_calls=tuple(ToolCall(d.id or "", d.name or "", d.arguments) for d in calls),
            finish_reason=finish,
            usage=next((c.usage for c in chunks if c.usage), Usage()),
            reasoning="".join(c.reasoning for c in chunks),
        )

    def stream_decoder(self) -> StreamDecoder:
        return OllamaStreamDecoder()

    def map_error(self, status: int, headers: Mapping[str, str], body: bytes) -> LLMRelayError:
        return error_from_body(status, body)

    # ---- other endpoints -------------------------------------------------------------------------

    async def list_models(self) -> list[ModelInfo]:
        body = await self._json(self._get("/api/tags"))
        return [ModelInfo(id=str(m.get("model") or m.get("name")), provider=self.name) for m in body.get("models") or ()]

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResult:
        payload: dict[str, Any] = {"model": request.model, "input": list(request.input)}
        if request.dimensions:
            payload["dimensions"] = request.dimensions
        body = await self._json(self.post("/api/embed", payload))
        vectors = tuple(tuple(float(x) for x in v) for v in body.get("embeddings") or ())
        return EmbeddingResult(
            model=request.model,
            vectors=vectors,
            usage=Usage(input_tokens=int(body.get("prompt_eval_count") or 0)),
            provider=self.name,
        )

    async def health(self) -> HealthStatus:
        started = time.perf_counter()
        try:
            body = await self._json(self._get("/api/version"))
        except LLMRelayError as exc:
            return HealthStatus(False, detail=str(exc))
        return HealthStatus(True, (time.perf_counter() - started) * 1000, f"ollama {body.get('version', '?')}")


# ------------------------------------------------------------------------------------ request


def request_body(request: ChatRequest, *, stream: bool) -> dict[str, Any]:
    """The ``/api/chat`` body for ``request``, in the shape the ``ollama`` SDK sends."""
    names = {c.id: c.name for m in request.messages for c in m.tool_calls}
    body: dict[str, Any] = {
        "model": request.model,
        "messages": [_message(m, names) for m in request.messages],
        "stream": stream,
    }
    if request.tools:
        body["tools"] = [
            {"type": "function", "function": _drop_none(
                {"name": t.name, "description": t.description, "parameters": dict(t.parameters)})}
            for t in request.tools
        ]
    fmt = request.response_format or {}
    if fmt.get("type") == "json_object":
        body["format"] = "json"
    elif fmt.get("type") == "json_schema":
        body["format"] = (fmt.get("json_schema") or {}).get("schema") or "json"
    options = _drop_none({
        "temperature": request.temperature,
        "top_p": request.top_p,
        "top_k": request.top_k,
        "num_predict": request.max_tokens,
        "seed": request.seed,
        "stop": list(request.stop) or None,
    })
    options.update(request.extra.get("options") or {})
    if options:
        body["options"] = options
    if request.reasoning is not None:
        body["think"] = _think(request)
    body.update({k: v for k, v in request.extra.items() if k != "options"})
    return body


def _think(request: ChatRequest) -> bool | str:
    r = request.reasoning
    if r is None or not r.enabled:
        return False
    # Only gpt-oss takes a level; other thinking models take a plain switch.
    if r.effort and request.model.startswith("gpt-oss"):
        return {"minimal": "low", "xhigh": "high"}.get(r.effort, r.effort)
    return True


def _drop_none(d: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def _message(msg: Message, names: Mapping[str, str]) -> dict[str, Any]:
    text, images = _content(msg.content)
    out: dict[str, Any] = {"role": msg.role}
    if text:  # the SDK leaves out empty fields; the server reads a missing content as ""
        out["content"] = text
    if images:
        out["images"] = images
    if msg.role == "assistant":
        if msg.reasoning:
            out["thinking"] = msg.reasoning
        if msg.tool_calls:
            out["tool_calls"] = [{"function": {"name": c.name, "arguments": _arguments(c.arguments)}} for c in msg.tool_calls]
    if msg.role == "tool":
        name = names.get(msg.tool_call_id or "") or msg.name
        if name:
            out["tool_name"] = name
    return out


def _arguments(arguments: str) -> Any:
    try:
        return orjson.loads(arguments or "{}")
    except orjson.JSONDecodeError:
        return {"arguments": arguments}


def _content(content: str | Sequence[Part] | None) -> tuple[str, list[str]]:
    if content is None or isinstance(content, str):
        return content or "", []
    texts: list[str] = []
    images: list[str] = []
    for part in content:
        if isinstance(part, TextPart):
            texts.append(part.text)
        elif isinstance(part, ImagePart):
            images.append(_image_data(part))
        elif isinstance(part, DocumentPart):
            texts.append(_document_text(part))
    return "".join(texts), images


def _image_data(part: ImagePart) -> str:
    if part.data is not None:
        return part.data
    url = part.url or ""
    if url.startswith("data:"):
        return url.partition(",")[2]
    raise InvalidRequestError(
        "Ollama takes images inline only; send the image as base64 data instead of a URL", param="messages"
    )


def _document_text(part: DocumentPart) -> str:
    if part.data is not None and (part.media_type or "").startswith("text/"):
        return base64.b64decode(part.data).decode("utf-8", errors="replace")
    raise InvalidRequestError(
        "Ollama accepts text and images only; send documents as text", param="messages"
    )


# ------------------------------------------------------------------------------------ answers


class OllamaStreamDecoder:
    """Decodes an ``/api/chat`` NDJSON stream (one answer object per line, the last with
    ``done: true``, usage and ``done_reason``). A non-streamed answer is that last line alone."""

    __slots__ = ("_calls", "_done", "_first", "id")

    def __init__(self) -> None:
        self._calls = 0
        self._done = False
        self._first = True
        self.id = ""

    def feed(self, line: bytes) -> Iterator[Chunk]:
        if not line.strip():
            return
        try:
            body = orjson.loads(line)
        except orjson.JSONDecodeError:
            raise StreamInterruptedError(f"the upstream sent a malformed stream line ({line[:80]!r})") from None
        yield from self.line(body)

    def line(self, body: Mapping[str, Any]) -> Iterator[Chunk]:
        if "error" in body:
            raise error_from_message(500, str(body["error"]))
        msg = body.get("message") or {}
        if self._first:
            self._first = False
            seed = f"{body.get('model', '')}{body.get('created_at', '')}".encode()
            self.id = "ollama-" + hashlib.sha1(seed, usedforsecurity=False).hexdigest()[:16]
            yield Chunk(id=self.id, model=body.get("model"))
        if msg.get("content") or msg.get("thinking"):
            yield Chunk(text=msg.get("content") or "", reasoning=msg.get("thinking") or "")
        calls = msg.get("tool_calls") or ()
        if calls:
            yield Chunk(tool_calls=tuple(self._call(c) for c in calls))
        if body.get("done"):
            self._done = True
            finish = _FINISH.get(str(body.get("done_reason") or "stop"), "stop")
            yield Chunk(
                finish_reason="tool_calls" if self._calls and finish == "stop" else finish,
                usage=Usage(
                    input_tokens=int(body.get("prompt_eval_count") or 0),
                    output_tokens=int(body.get("eval_count") or 0),
                ),
            )

    def _call(self, call: Mapping[str, Any]) -> ToolCallDelta:
        fn = call.get("function") or {}
        index, self._calls = self._calls, self._calls + 1
        args = fn.get("arguments")
        text = args if isinstance(args, str) else orjson.dumps(args or {}).decode()
        call_id = call.get("id") or f"call_{self.id[7:15]}_{index}"
        return ToolCallDelta(index=index, id=call_id, name=fn.get("name", ""), arguments=text)

    def close(self) -> Iterator[Chunk]:
        if not self._done:
            raise StreamInterruptedError("the upstream's stream ended before the answer was done")
        return iter(())


# ------------------------------------------------------------------------------------- errors


def error_from_body(status: int, raw: bytes) -> LLMRelayError:
    """Ollama answers errors as ``{"error": "..."}``; a proxy in front may answer HTML."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        snippet = raw[:200].decode("utf-8", errors="replace").strip()
        kind = "an HTML page" if snippet.lower().startswith(("<!doctype", "<html")) else "a non-JSON body"
        return error_for_status(status)(f"the upstream answered HTTP {status} with {kind} ({snippet[:80]!r}); check base_url")
    message = str(body.get("error") if isinstance(body, Mapping) else body) or f"HTTP {status}"
    return error_from_message(status, message)


def error_from_message(status: int, message: str) -> LLMRelayError:
    cls = error_for_status(status)
    if cls is ModelNotFoundError:
        return cls(f"{message} (pull it on the Ollama host: ollama pull MODEL)")
    return cls(message)
