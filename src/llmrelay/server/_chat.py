"""Running one chat call for an edge: the pipeline in, the protocol's bytes out.

Both edges share this: a non-streamed call is the collected stream; a streamed call pulls its first
chunk before any header is sent, so an early failure (auth, budget, every deployment down) is still
a proper error response with its status, and the provider and cache status are known for the headers.
After that, an error becomes an error event in the protocol's stream format, and a client that
goes away closes the pipeline (cancelling the upstream call) with the usage so far kept on ``ctx``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ..caching.decoded import HIT_NOTE, Rendered
from ..context import RequestContext
from ..errors import GatewayError, LLMRelayError
from ..relay import Relay
from ..streaming import Assembler, content_chars, estimate_usage
from ..types import ChatRequest, ChatResult, Chunk, Usage
from ._asgi import JSON_TYPE, SSE_HEADERS, Headers, Receive, Response, Send, StreamResponse

log = logging.getLogger("llmrelay.server")
# Rendered.rendered's key for the result collected from a shared chunk (with the provider it names).
_RESULT = "chat.result"


class StreamEncoder(Protocol):
    def chunk(self, c: Chunk) -> bytes: ...

    def end(self, cost_usd: float | None) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Wire:
    """What differs between the edges: how results, streams and errors are written."""

    encode_result: Callable[[ChatResult, str, str, float | None], bytes]
    # (model, request_id, include_usage) -> a fresh encoder for one stream.
    new_encoder: Callable[[str, str, bool], StreamEncoder]
    error_body: Callable[[LLMRelayError], Mapping[str, Any]]
    error_event: Callable[[Mapping[str, Any]], bytes]
    # encode_result for an answer served to many callers, given its memo (Rendered.rendered)
    # to keep what does not change from one hit to the next; None: encode_result every time.
    encode_hit: Callable[[ChatResult, str, str, float | None, Rendered], bytes] | None = None


def ctx_headers(ctx: RequestContext) -> Headers:
    return [
        (b"x-llmrelay-request-id", ctx.request_id.encode()),
        (b"x-llmrelay-provider", (ctx.provider or "").encode()),
        (b"x-llmrelay-cost-usd", f"{ctx.cost_usd:.8f}".encode()),
        (b"x-llmrelay-cache", ctx.cache_status.encode()),
    ]


def error_response(wire: Wire, exc: LLMRelayError, ctx: RequestContext | None) -> Response:
    headers: Headers = [JSON_TYPE, *((k.encode(), v.encode()) for k, v in exc.headers().items())]
    if ctx is not None:
        answered_error(ctx, exc)
        headers += ctx_headers(ctx)
    import orjson

    return Response(exc.status, orjson.dumps(wire.error_body(exc)), headers)


def answered_error(ctx: RequestContext, exc: LLMRelayError) -> None:
    """Note on ``ctx`` the error the client is answered with, without its traceback (and its
    causes'): those frames hold ``ctx``, which holds the error, a cycle that would keep the
    request (its body, its context) alive until the collector's next full pass. An answered error
    is not raised again, and a bug's traceback was logged before (``unexpected``)."""
    ctx.error, ctx.status = exc, "error"
    seen: BaseException | None = exc
    for _ in range(8):  # a bounded walk: a cause chain can loop
        if seen is None:
            break
        seen.__traceback__ = None
        seen = seen.__cause__ or seen.__context__


def unexpected(exc: BaseException) -> GatewayError:
    """A bug, not a caller's mistake: logged with its traceback, answered without it."""
    log.exception("unexpected error while handling a request", exc_info=exc)
    return GatewayError("the gateway failed unexpectedly; the error was logged (retrying may help)")


class _RunsDeferred:
    """Mixed into a response: once its sending ends (last byte handed to the server, the client
    gone, or an error), the request's deferred work (``ctx.defer``) runs."""

    __slots__ = ()
    ctx: RequestContext

    async def send(self, send: Send, receive: Receive) -> None:
        try:
            await super().send(send, receive)  # type: ignore[misc]
        finally:
            await self.ctx.run_after_response()


class _ThenWork(_RunsDeferred, Response):
    __slots__ = ("ctx",)

    def __init__(self, ctx: RequestContext, status: int, body: bytes, headers: Headers) -> None:
        Response.__init__(self, status, body, headers)
        self.ctx = ctx


class _FirstAtOnce(StreamResponse):
    """A stream whose first piece is ready when it is sent (the chat edge pulls the first chunk
    before the headers): that piece is written right after the headers, in the same step. Through
    the writer task it went out a loop turn later, after the task pair was set up (~40-60 us of
    the time to first chunk at one client). The rest streams as any StreamResponse does."""

    __slots__ = ()

    async def send(self, send: Send, receive: Receive) -> None:
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        body = self.body
        try:
            first = await body.__anext__()
        except StopAsyncIteration:
            first = None
        except BaseException:
            await _aclose(body)
            raise
        if first is not None:
            await send({"type": "http.response.body", "body": first, "more_body": True})
        await self.send_body(send, receive)


class _StreamThenWork(_RunsDeferred, _FirstAtOnce):
    """Its deferred work runs after the end event, once the pipeline has been closed."""

    __slots__ = ("ctx",)

    def __init__(self, ctx: RequestContext, body: AsyncIterator[bytes], headers: Headers) -> None:
        StreamResponse.__init__(self, body, headers=headers)
        self.ctx = ctx


async def run_chat(relay: Relay, wire: Wire, request: ChatRequest, ctx: RequestContext,
                   include_usage: bool = False) -> Response | StreamResponse:
    """The response to one chat call. Bookkeeping the layers defer (ledger row, metrics, limit
    corrections) runs once that response has been sent, or here when the call fails before one
    exists; when the caller already collects deferred work on ``ctx``, it stays the caller's."""
    if ctx.after_response is not None:
        return await _run(relay, wire, request, ctx, include_usage, deferred=False)
    ctx.after_response = []
    try:
        return await _run(relay, wire, request, ctx, include_usage, deferred=True)
    except BaseException:
        await ctx.run_after_response()
        raise


async def _run(relay: Relay, wire: Wire, request: ChatRequest, ctx: RequestContext, include_usage: bool,
               deferred: bool) -> Response | StreamResponse:
    if not request.stream:
        return await _complete(relay, wire, request, ctx, deferred)
    return await _stream(relay, wire, request, ctx, include_usage, deferred)


async def _complete(relay: Relay, wire: Wire, request: ChatRequest, ctx: RequestContext,
                    deferred: bool = False) -> Response:
    result = await collect(relay.handle(request, ctx), ctx)
    if ctx.usage is None:
        ctx.usage = result.usage
    ctx.status = "ok"
    hot: Rendered | None = ctx.notes.get(HIT_NOTE)
    if hot is not None and wire.encode_hit is not None and hot.rendered.get((_RESULT, ctx.provider)) is result:
        # The shared answer itself (a cache entry's, a dedup flight's), as collected for an earlier
        # caller: its constant bytes are kept.
        body = wire.encode_hit(result, request.model, ctx.request_id, ctx.cost_usd, hot)
    else:
        body = wire.encode_result(result, request.model, ctx.request_id, ctx.cost_usd)
    headers = [JSON_TYPE, *ctx_headers(ctx)]
    return _ThenWork(ctx, 200, body, headers) if deferred else Response(200, body, headers)


async def collect(chunks: AsyncIterator[Chunk], ctx: RequestContext) -> ChatResult:
    """The answer the chunks make. A non-streamed answer usually arrives as one whole chunk (the
    provider's result, a cache hit): made into the result directly, without an :class:`Assembler`
    (the same result; ~4 us less on every plain request's critical path)."""
    only: Chunk | None = None
    asm: Assembler | None = None
    async for chunk in chunks:
        if asm is not None:
            asm.add(chunk)
        elif only is None:
            only = chunk
        else:
            asm = Assembler()
            asm.add(only)
            asm.add(chunk)
    if asm is None:
        if only is not None and not only.choice and not only.tool_calls:
            hot: Rendered | None = ctx.notes.get(HIT_NOTE)
            if hot is not None and _is_first(only, hot.chunks(False)):
                # A cache hit's (or dedup flight's) own chunk, passed on unchanged by every layer:
                # the result made from it for the first caller is the same (immutable) result.
                kept = hot.rendered.get((_RESULT, ctx.provider))
                return kept if kept is not None else hot.remember((_RESULT, ctx.provider), _one_result(only, ctx))
            return _one_result(only, ctx)
        asm = Assembler()
        if only is not None:
            asm.add(only)
    return asm.result(provider=ctx.provider)


def _is_first(chunk: Chunk, replay: tuple[Chunk, ...]) -> bool:
    return bool(replay) and chunk is replay[0]


def _one_result(only: Chunk, ctx: RequestContext) -> ChatResult:
    return ChatResult(
        id=only.id or "", model=only.model or "", text=only.text, finish_reason=only.finish_reason or "stop",
        usage=only.usage or Usage(), reasoning=only.reasoning, reasoning_signature=only.reasoning_signature or None,
        provider=ctx.provider,
    )


async def _stream(relay: Relay, wire: Wire, request: ChatRequest, ctx: RequestContext,
                  include_usage: bool, deferred: bool = False) -> StreamResponse:
    agen = relay.handle(request, ctx)
    try:
        first: Chunk | None = await agen.__anext__()
    except StopAsyncIteration:
        first = None
    except BaseException:
        await _aclose(agen)
        raise
    headers = [*SSE_HEADERS, *ctx_headers(ctx)]
    body = _body(agen, first, wire, request, ctx, include_usage)
    return _StreamThenWork(ctx, body, headers) if deferred else StreamResponse(body, headers=headers)


async def _body(agen: AsyncIterator[Chunk], first: Chunk | None, wire: Wire, request: ChatRequest,
                ctx: RequestContext, include_usage: bool) -> AsyncIterator[bytes]:
    enc = wire.new_encoder(request.model, ctx.request_id, include_usage)
    sent_chars = 0
    try:
        if first is not None:
            sent_chars += content_chars(first)
            yield enc.chunk(first)
        async for chunk in agen:
            sent_chars += content_chars(chunk)
            data = enc.chunk(chunk)
            if data:
                yield data
        ctx.status = "ok"
        yield enc.end(ctx.cost_usd)
    except LLMRelayError as exc:
        answered_error(ctx, exc)
        yield wire.error_event(wire.error_body(exc))
    except (asyncio.CancelledError, GeneratorExit):
        # The client went away: keep what was used, so it is still accounted.
        ctx.status = "cancelled"
        if ctx.usage is None:
            ctx.usage = estimate_usage(request, sent_chars)
        raise
    except Exception as exc:
        err = unexpected(exc)
        answered_error(ctx, err)
        yield wire.error_event(wire.error_body(err))
    finally:
        await _aclose(agen)


async def _aclose(agen: AsyncIterator[Any]) -> None:
    aclose = getattr(agen, "aclose", None)
    if aclose is not None:
        await aclose()


def estimate_input_tokens(request: ChatRequest) -> int:
    """A rough prompt size when no tokenizer answer is at hand (the same estimate streams use)."""
    return max(1, estimate_usage(request, 0).input_tokens)
