"""OpenTelemetry traces with the GenAI semantic conventions (the ``otel`` extra).

One span per request (``chat {model}``, kind SERVER) and one child span per upstream attempt
(``chat {upstream model}``, kind CLIENT), carrying ``gen_ai.system``, ``gen_ai.operation.name``,
``gen_ai.request.model``, ``gen_ai.response.model``, ``gen_ai.usage.input_tokens``,
``gen_ai.usage.output_tokens``, ``gen_ai.response.finish_reasons`` and ``error.type``, plus
``llmrelay.*`` attributes (request id, cost, cache status, attempts). Never prompt or answer text.

Zero cost when off: with ``tracing.enabled: false`` (the default) or without the extra installed,
:func:`build_tracing` returns ``None``, OpenTelemetry is never imported and the request path only
tests one ``None``. Spans are started with an explicit parent, never made "current": a stream is
pulled from several tasks, so context-variable tokens could not be reset where they were set.

Tests (or an embedding application) hand their own SDK ``TracerProvider`` in through
``services.state["ops.tracer_provider"]``:

    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    exporter = InMemorySpanExporter()
    provider = TracerProvider(); provider.add_span_processor(SimpleSpanProcessor(exporter))
    relay = Relay({... "tracing": {"enabled": True, "exporter": "none"}})
    relay.services.state["ops.tracer_provider"] = provider   # before the first reload/build
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ..config import TracingConfig
from ..context import RequestContext
from ..types import ChatRequest

if TYPE_CHECKING:
    from ..services import Services

log = logging.getLogger("llmrelay.ops.tracing")

TRACING_KEY = "ops.tracing"
PROVIDER_KEY = "ops.tracer_provider"


class Tracing:
    """Starts and ends the gateway's spans; built only when tracing is on and the SDK imports."""

    def __init__(self, tracer: Any) -> None:
        from opentelemetry import trace
        from opentelemetry.trace import SpanKind, Status, StatusCode

        self._tracer = tracer
        self._trace = trace
        self._kinds = (SpanKind.SERVER, SpanKind.CLIENT)
        self._status, self._error = Status, StatusCode.ERROR

    def start_request(self, request: ChatRequest, ctx: RequestContext) -> Any:
        attrs: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": request.model,
            "llmrelay.request_id": ctx.request_id,
            "llmrelay.protocol": ctx.protocol,
            "llmrelay.stream": request.stream,
        }
        _request_params(request, attrs)
        span = self._tracer.start_span(f"chat {request.model}", kind=self._kinds[0], attributes=attrs)
        ctx.notes["otel.span"] = span
        return span

    def end_request(self, span: Any, ctx: RequestContext, exc: BaseException | None, finish: str | None) -> None:
        attrs: dict[str, Any] = {"llmrelay.status": ctx.status, "llmrelay.cache": ctx.cache_status,
                                 "llmrelay.attempts": ctx.attempts, "llmrelay.cost_usd": ctx.cost_usd}
        if ctx.provider_kind:
            attrs["gen_ai.system"] = ctx.provider_kind
        if ctx.provider:
            attrs["llmrelay.provider"] = ctx.provider
        if ctx.upstream_model:
            attrs["gen_ai.response.model"] = ctx.upstream_model
        if ctx.key_id:
            attrs["llmrelay.key_id"] = ctx.key_id
        self._finish(span, ctx, attrs, exc, finish)

    def start_attempt(self, ctx: RequestContext, provider: str, kind: str, model: str) -> Any:
        """A CLIENT span under the request's span, for one call to an upstream deployment."""
        parent = ctx.notes.get("otel.span")
        context = self._trace.set_span_in_context(parent) if parent is not None else None
        attrs = {"gen_ai.operation.name": "chat", "gen_ai.system": kind, "gen_ai.request.model": model,
                 "llmrelay.provider": provider, "llmrelay.attempt": ctx.attempts}
        return self._tracer.start_span(f"chat {model}", context=context, kind=self._kinds[1], attributes=attrs)

    def end_attempt(self, span: Any, ctx: RequestContext, exc: BaseException | None) -> None:
        self._finish(span, ctx, {"gen_ai.response.model": ctx.upstream_model or ""}, exc, None)

    def _finish(self, span: Any, ctx: RequestContext, attrs: dict[str, Any], exc: BaseException | None,
                finish: str | None) -> None:
        u = ctx.usage
        if u is not None:
            attrs["gen_ai.usage.input_tokens"] = u.input_tokens
            attrs["gen_ai.usage.output_tokens"] = u.output_tokens
        if finish:
            attrs["gen_ai.response.finish_reasons"] = (finish,)
        if exc is not None and not isinstance(exc, GeneratorExit):
            code = getattr(exc, "code", None) or type(exc).__name__
            attrs["error.type"] = str(code)
            span.set_status(self._status(self._error, str(code)))
        span.set_attributes(attrs)
        span.end()


def _request_params(request: ChatRequest, attrs: dict[str, Any]) -> None:
    for name, value in (("max_tokens", request.max_tokens), ("temperature", request.temperature),
                        ("top_p", request.top_p)):
        if value is not None:
            attrs[f"gen_ai.request.{name}"] = value


def _make_provider(cfg: TracingConfig) -> Any:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
    from opentelemetry.sdk.trace.sampling import TraceIdRatioBased

    provider = TracerProvider(resource=Resource.create({"service.name": cfg.service_name}),
                              sampler=TraceIdRatioBased(cfg.sample_ratio))
    if cfg.exporter == "console":
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    elif cfg.exporter == "otlp":
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError:
            log.warning("tracing.exporter is otlp but opentelemetry-exporter-otlp-proto-http is not "
                        "installed; spans are not exported (pip install opentelemetry-exporter-otlp-proto-http)")
        else:
            exporter = OTLPSpanExporter(endpoint=cfg.endpoint) if cfg.endpoint else OTLPSpanExporter()
            provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def build_tracing(services: Services) -> Tracing | None:
    """The tracing object for this generation, or None (off, or the extra is missing)."""
    cfg = services.settings.tracing
    if not cfg.enabled:
        return None
    try:
        import opentelemetry.sdk.trace  # noqa: F401
    except ImportError:
        log.warning("tracing.enabled is true but the otel extra is not installed (pip install 'llmrelay[otel]')")
        return None
    state = services.state
    # The provider outlives reloads (its exporter batches spans); rebuilt only when the config changes.
    provider = state.get(PROVIDER_KEY)
    if provider is None or state.get("ops.tracer_config") not in (None, cfg):
        if provider is not None and state.get("ops.tracer_config") is not None:
            provider.shutdown()
        provider = state[PROVIDER_KEY] = _make_provider(cfg)
        state["ops.tracer_config"] = cfg
    from .. import __about__

    return Tracing(provider.get_tracer("llmrelay", __about__.__version__))


def wire_tracing(services: Services) -> None:
    """Publish this generation's tracing object where the router's attempt hook finds it."""
    services.state[TRACING_KEY] = build_tracing(services)
