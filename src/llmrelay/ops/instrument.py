"""The request wrapper around the whole pipeline: the access/error log line and the request span.

    handler = instrument(services, build_pipeline(services))

It sits outside the accounting layer, so when a request ends it sees the final status, usage and
cost. One log line per request at info when ``logging.access_log`` is on; a request that ended in
an error is always logged (warning for a 4xx caused by the upstream, error for a 5xx). The line
carries ids, sizes, timings and cost, never message text, keys or prompts.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from ..context import RequestContext
from ..layers.accounting import aclose
from ..pipeline import Handler
from ..services import Services
from ..types import ChatRequest, Chunk
from .tracing import TRACING_KEY, Tracing

log = logging.getLogger("llmrelay.access")


def access_fields(request: ChatRequest, ctx: RequestContext) -> dict[str, Any]:
    """What one access line says about a request (no content, no credentials)."""
    u = ctx.usage
    latency, ttft = ctx.latency_s, ctx.ttft_s
    fields: dict[str, Any] = {
        "request_id": ctx.request_id, "protocol": ctx.protocol, "model": ctx.model_group or request.model,
        "provider": ctx.provider, "upstream_model": ctx.upstream_model, "stream": request.stream,
        "status": ctx.status, "attempts": ctx.attempts, "cache": ctx.cache_status,
        "latency_ms": None if latency is None else round(latency * 1000, 2),
        "ttft_ms": None if ttft is None else round(ttft * 1000, 2),
        "input_tokens": u.input_tokens if u else 0, "output_tokens": u.output_tokens if u else 0,
        "cost_usd": round(ctx.cost_usd, 10), "key_id": ctx.key_id,
    }
    if ctx.error is not None:
        fields["error_code"] = ctx.error.code
        fields["http_status"] = ctx.error.status
        # Error messages are ours or the upstream's; the redacting filter still runs on them.
        fields["error"] = str(ctx.error.message)[:300]
    return fields


def _log_request(request: ChatRequest, ctx: RequestContext, access: bool) -> None:
    err = ctx.error
    if ctx.status == "error":
        level = logging.ERROR if err is None or err.status >= 500 else logging.WARNING
    elif access:
        level = logging.INFO
    else:
        return
    if not log.isEnabledFor(level):
        return

    status = ctx.status  # as the request ended: the edge may still touch ctx while it answers

    def write() -> None:
        fields = access_fields(request, ctx)
        fields["status"] = status
        log.log(level, "request %s", status, extra={"fields": fields})

    # Formatting and writing the line does not shape the answer: behind an HTTP edge it runs once
    # the response is out (ctx.defer); a library call logs here and now.
    if not ctx.defer(write):
        write()


def instrument(services: Services, handler: Handler) -> Handler:
    """Wrap the pipeline with the request log line and, when tracing is on, the request span."""
    access = services.settings.logging.access_log
    tracing: Tracing | None = services.state.get(TRACING_KEY)

    async def instrumented(request: ChatRequest, ctx: RequestContext) -> AsyncIterator[Chunk]:
        span = tracing.start_request(request, ctx) if tracing is not None else None
        failure: BaseException | None = None
        finish: str | None = None
        chunks = handler(request, ctx)
        try:
            async for chunk in chunks:
                if chunk.finish_reason is not None:
                    finish = chunk.finish_reason
                yield chunk
        except BaseException as exc:
            failure = exc
            # Closed now (a client gone mid-stream), not whenever the collector finds it.
            await aclose(chunks)
            raise
        finally:
            if span is not None and tracing is not None:
                tracing.end_request(span, ctx, failure, finish)
            _log_request(request, ctx, access)

    return instrumented
