"""The pipeline: the layers a request passes through, in order, and how they are composed.

``LAYERS`` below is the request path. It is the contract the README and DESIGN.md show; changing
the order is a design decision, not a refactor.

A layer is built once from the shared :class:`~llmrelay.services.Services` and the next handler, and
called per request. It returns the stream of chunks, wrapping the next handler's stream instead of
buffering it; work that needs the whole answer runs when the stream ends. A factory that returns
``None`` leaves its layer out (for instance the cache when caching is off), so a disabled feature
costs nothing per request.

    async def shout(services, next):
        async def layer(request, ctx):
            async for chunk in next(request, ctx):
                yield replace(chunk, text=chunk.text.upper())
        return layer
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING, TypeAlias

from .context import RequestContext
from .types import ChatRequest, Chunk

if TYPE_CHECKING:
    from .services import Services

Handler: TypeAlias = Callable[[ChatRequest, RequestContext], AsyncIterator[Chunk]]
LayerFactory: TypeAlias = Callable[["Services", Handler], "Handler | None"]

# The request path, outermost first. Each entry is "module:factory" under llmrelay.layers.
#   accounting  records every request (usage ledger, metrics, audit summary), refusals included
#   identity    who is calling: virtual key, user, team, session
#   policy      the effective settings for this caller (limits, safety level, allowed models)
#   safety      inspect the prompt (block, redact or flag) and the answer, incrementally on streams
#   budget      reserve the worst-case cost; refuse if it does not fit; settle the real cost after
#   cache       exact (and optional semantic) response cache
#   dedup       an identical request already in flight? share its result or stream
#   ratelimit   RPM/TPM per key and user; priority queue; fair share
#   router      pick a deployment; retry with backoff; fail over; circuit breakers; call the provider
LAYERS: tuple[str, ...] = (
    "accounting:build",
    "identity:build",
    "policy:build",
    "safety:build",
    "budget:build",
    "cache:build",
    "dedup:build",
    "ratelimit:build",
    "router:build",
)


def load_factory(spec: str) -> LayerFactory:
    """``"cache:build"`` names a built-in layer (a module of llmrelay.layers); any other module
    (``"myapp.layers:build"``, ``"tenant_layer:build"``) names one of yours."""
    module, _, name = spec.partition(":")
    builtin = f"llmrelay.layers.{module}"
    if "." not in module and importlib.util.find_spec(builtin) is not None:
        module = builtin
    mod = importlib.import_module(module)
    factory: LayerFactory = getattr(mod, name)
    return factory


def layer_specs(extra: Sequence[str] = ()) -> tuple[str, ...]:
    """The request path with ``extra`` layers (config ``extra_layers``) inserted just before the
    router: they see each request once identity, policy, safety, budget, cache, dedup and rate
    limits have passed it, and each upstream answer before those layers do."""
    return (*LAYERS[:-1], *extra, LAYERS[-1])


def build_pipeline(services: Services, layers: Sequence[str] = LAYERS) -> Handler:
    """Fold the layers, innermost first, into one handler. The router is the innermost layer and
    must exist; any other factory may opt out by returning None."""
    handler: Handler | None = None
    for spec in reversed(layers):
        factory = load_factory(spec)
        built = factory(services, handler)  # type: ignore[arg-type]
        if built is not None:
            handler = built
    if handler is None:
        raise RuntimeError("the pipeline has no layers")
    return handler
