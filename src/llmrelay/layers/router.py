"""Router: resolve the public model name to its deployments and call one, failing over in order.

This is the innermost layer. It sets ``ctx.provider`` / ``ctx.upstream_model`` before the first
chunk leaves, and ``ctx.usage`` / ``ctx.cost_usd`` when the answer ends. A streamed call fails over
only while nothing has been yielded yet; after that, recovery is the streaming layer's job.

A non-streamed request makes a non-streamed upstream call (``Provider.complete``), and its result
flows on as a single chunk.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from ..context import RequestContext
from ..errors import LLMRelayError, ModelNotFoundError
from ..pipeline import Handler
from ..services import Services
from ..types import ChatRequest, Chunk


def build(services: Services, next: Handler | None) -> Handler:
    settings = services.settings
    groups = {name: tuple(deps) for name, deps in settings.models.items()}
    providers = services.providers
    pricing = services.pricing

    def resolve(model: str) -> tuple:
        deps = groups.get(model)
        if deps:
            return deps
        # "provider/model" reaches a configured provider directly.
        prov, sep, upstream = model.partition("/")
        if sep and prov in providers:
            from ..config import Deployment

            return (Deployment(provider=prov, model=upstream),)
        raise ModelNotFoundError(
            f"model {model!r} is not configured; available models: {', '.join(sorted(groups)) or 'none'}",
            param="model",
        )

    async def route(request: ChatRequest, ctx: RequestContext) -> AsyncIterator[Chunk]:
        deployments = resolve(request.model)
        ctx.model_group = ctx.model_group or request.model
        attempts = max(1, settings.routing.retries + 1)
        last: LLMRelayError | None = None
        for attempt in range(attempts):
            dep = deployments[attempt % len(deployments)]
            provider = providers[dep.provider]
            ctx.provider, ctx.provider_kind, ctx.upstream_model = dep.provider, provider.settings.kind, dep.model
            ctx.attempts = attempt + 1
            upstream_request = request.with_model(dep.model)
            started = False
            try:
                if request.stream:
                    async for chunk in provider.stream(upstream_request):
                        started = True
                        if chunk.usage is not None:
                            ctx.usage = chunk.usage
                            if pricing is not None:
                                pricing.apply(ctx)
                        yield chunk
                else:
                    result = await provider.complete(upstream_request)
                    ctx.usage = result.usage
                    if pricing is not None:
                        pricing.apply(ctx)
                    for chunk in result.to_chunks():
                        yield chunk
                return
            except LLMRelayError as exc:
                last = exc
                if started or not exc.retryable:
                    raise
        assert last is not None
        raise last

    return route
