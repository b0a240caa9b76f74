"""Relay: the library's front object. It builds the pipeline from the settings and runs calls.

    import asyncio
    from llmrelay import Relay, Message

    async def main():
        async with Relay.from_file("llmrelay.yaml") as relay:
            result = await relay.chat(model="fast", messages=[Message.user("Hello")])
            print(result.text, result.usage)
            async for chunk in relay.stream(model="fast", messages=[Message.user("Hi")]):
                print(chunk.text, end="")

    asyncio.run(main())

A reload builds a new generation (services and pipeline) and swaps it in with one assignment:
requests in flight keep the generation they started with; providers whose config is unchanged are
handed over with their connection pools.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .clock import Clock
from .config import Deployment, Settings, load_settings
from .context import RequestContext
from .errors import InvalidRequestError, LLMRelayError, ModelNotFoundError
from .pipeline import LAYERS, Handler, build_pipeline, layer_specs, load_factory
from .providers.base import Provider
from .services import Services
from .streaming import Assembler
from .transport import Transport
from .types import ChatRequest, ChatResult, Chunk, EmbeddingRequest, EmbeddingResult, Message, ModelInfo


@dataclass(frozen=True, slots=True)
class Generation:
    """One settings generation: the services and the pipeline built from them."""

    services: Services
    handler: Handler
    # The outermost layer (accounting) around nothing: records calls that never ran the pipeline.
    accounting: Handler

    @property
    def settings(self) -> Settings:
        return self.services.settings


class Relay:
    def __init__(
        self,
        settings: Settings | Mapping[str, Any],
        *,
        clock: Clock | None = None,
        transports: Mapping[str, Transport] | None = None,
    ) -> None:
        if not isinstance(settings, Settings):
            settings = Settings.from_dict(settings)
        self._clock = clock
        self._transports = dict(transports or {})
        self._gen = self._build(settings, previous=None)
        self._started = False
        self._reload_lock = asyncio.Lock()

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], **kwargs: Any) -> Relay:
        return cls(load_settings(Path(path)), **kwargs)

    def _build(self, settings: Settings, previous: Services | None) -> Generation:
        services = Services.build(settings, clock=self._clock, transports=self._transports, previous=previous)
        from .wiring import wire_services

        wire_services(services)
        from .ops.instrument import instrument

        # instrument(): the request log line and span, outside every layer (llmrelay.ops).
        layers = layer_specs(settings.extra_layers)
        accounting = load_factory(LAYERS[0])(services, _raise_ctx_error) or _raise_ctx_error
        return Generation(services, instrument(services, build_pipeline(services, layers)),
                          instrument(services, accounting))

    # ---- lifecycle ---------------------------------------------------------------------------------

    @property
    def settings(self) -> Settings:
        return self._gen.settings

    @property
    def services(self) -> Services:
        return self._gen.services

    async def start(self) -> None:
        if not self._started:
            self._started = True
            for start in self._gen.services.on_start:
                await start()

    async def aclose(self) -> None:
        await self._gen.services.aclose()
        self._started = False

    async def __aenter__(self) -> Relay:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def reload(self, settings: Settings) -> None:
        """Swap in new settings atomically; the old generation's unneeded providers are closed
        once the new one is in place (requests in flight hold their own reference)."""
        async with self._reload_lock:
            old = self._gen
            new = self._build(settings, previous=old.services)
            if self._started:
                for start in new.services.on_start:
                    await start()
            self._gen = new
            await old.services.aclose(keep=new.services.providers)

    # ---- calls -------------------------------------------------------------------------------------

    @staticmethod
    def _request(request: ChatRequest | None, model: str | None, messages: Iterable[Message] | None, stream: bool, params: Mapping[str, Any]) -> ChatRequest:
        if request is None:
            if model is None or messages is None:
                raise TypeError("give a ChatRequest, or model= and messages=")
            request = ChatRequest(model=model, messages=tuple(messages), **params)
        if request.stream != stream:
            request = replace(request, stream=stream)
        return request

    def handle(self, request: ChatRequest, ctx: RequestContext) -> AsyncIterator[Chunk]:
        """Run one request through the current generation's pipeline (the edges' entry point)."""
        return self._gen.handler(request, ctx)

    async def account(self, ctx: RequestContext, model: str, error: LLMRelayError | None = None) -> None:
        """Record a call that did not run through the chat pipeline, as the pipeline records any
        call (ledger row, metrics, audit summary, log line): an embedding call, or a request an edge
        refused before the pipeline saw it (bad key, unreadable body), so no refusal goes unrecorded.

            await relay.account(ctx, "fast", AuthenticationError("invalid API key"))
        """
        if error is not None:
            ctx.error = error
        try:
            async for _ in self._gen.accounting(ChatRequest(model=model, messages=()), ctx):
                pass
        except LLMRelayError as exc:
            if exc is not error:
                raise

    async def chat(
        self,
        request: ChatRequest | None = None,
        *,
        model: str | None = None,
        messages: Iterable[Message] | None = None,
        ctx: RequestContext | None = None,
        **params: Any,
    ) -> ChatResult:
        """One non-streamed call; raises an :class:`~llmrelay.errors.LLMRelayError` on failure."""
        req = self._request(request, model, messages, False, params)
        ctx = ctx or RequestContext()
        asm = Assembler()
        async for chunk in self._gen.handler(req, ctx):
            asm.add(chunk)
        return asm.result(provider=ctx.provider)

    async def stream(
        self,
        request: ChatRequest | None = None,
        *,
        model: str | None = None,
        messages: Iterable[Message] | None = None,
        ctx: RequestContext | None = None,
        **params: Any,
    ) -> AsyncIterator[Chunk]:
        """A streamed call: yields chunks as they arrive. Closing it early (``aclose()``, or leaving
        an ``async for``) closes the pipeline at once, so the upstream call stops and is accounted."""
        req = self._request(request, model, messages, True, params)
        chunks = self._gen.handler(req, ctx or RequestContext())
        try:
            async for chunk in chunks:
                yield chunk
        finally:
            aclose = getattr(chunks, "aclose", None)
            if aclose is not None:
                await aclose()

    def deployments(self, model: str) -> list[tuple[Deployment, Provider]]:
        """The deployments a public model name resolves to, in order (``provider/model`` reaches a
        configured provider directly); raises ModelNotFoundError for an unknown name."""
        services = self._gen.services
        deps = services.settings.models.get(model)
        if deps is None:
            prov, sep, upstream = model.partition("/")
            if not (sep and prov in services.providers):
                raise ModelNotFoundError(
                    f"model {model!r} is not configured; available models: "
                    f"{', '.join(sorted(services.settings.models)) or 'none'}",
                    param="model",
                )
            deps = [Deployment(provider=prov, model=upstream)]
        return [(d, services.providers[d.provider]) for d in deps]

    async def embed(self, request: EmbeddingRequest, ctx: RequestContext | None = None) -> EmbeddingResult:
        """Embeddings from the first deployment of the model group whose provider has them,
        moving on to the next one when a deployment fails with a retryable error.

        Budgets hold as for chat: the input's cost is reserved first (a key over its budget gets
        the same BudgetExceededError) and the priced cost settled after, however the call ends.
        The caller records the call (``account``), as the chat pipeline's accounting layer does."""
        ctx = ctx if ctx is not None else RequestContext()
        ctx.model_group = ctx.model_group or request.model
        services = self._gen.services
        budgets, estimator = getattr(services, "budgets", None), services.state.get("cost.estimator")
        if budgets is None or estimator is None or not (budgets.applicable(ctx, request.model) or budgets.brake):
            return await self._embed(request, ctx)
        reservation = await budgets.reserve(ctx, estimator.embedding_worst_case(request), request.model)
        try:
            return await self._embed(request, ctx)
        finally:
            # Shielded: a cancelled request must still give its reservation back.
            await asyncio.shield(budgets.settle(reservation, ctx.cost_usd))

    async def _embed(self, request: EmbeddingRequest, ctx: RequestContext) -> EmbeddingResult:
        last: LLMRelayError | None = None
        for dep, provider in self.deployments(request.model):
            if not provider.capabilities.embeddings:
                continue
            ctx.provider, ctx.provider_kind, ctx.upstream_model = dep.provider, provider.settings.kind, dep.model
            try:
                result = await provider.embed(replace(request, model=dep.model))
            except LLMRelayError as exc:
                if not exc.retryable:
                    raise
                last = exc
                continue
            ctx.usage = result.usage
            if self.services.pricing is not None:
                self.services.pricing.apply(ctx)
            return replace(result, provider=result.provider or dep.provider)
        if last is not None:
            raise last
        raise InvalidRequestError(f"no deployment of model {request.model!r} offers embeddings", param="model")

    async def list_models(self) -> list[ModelInfo]:
        """The public model names (model groups) this relay serves."""
        return [ModelInfo(id=name) for name in self.settings.models]

    def sync(self) -> SyncRelay:
        return SyncRelay(self)


async def _raise_ctx_error(request: ChatRequest, ctx: RequestContext) -> AsyncIterator[Chunk]:
    if ctx.error is not None:
        raise ctx.error
    return
    yield


class SyncRelay:
    """A blocking facade over a :class:`Relay`, running its event loop in a background thread.

        relay = Relay.from_file("llmrelay.yaml").sync()
        print(relay.chat(model="fast", messages=[Message.user("Hi")]).text)
        relay.close()
    """

    def __init__(self, relay: Relay) -> None:
        import threading

        self._relay = relay
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="llmrelay-sync", daemon=True)
        self._thread.start()
        self._run(relay.start())

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def chat(self, request: ChatRequest | None = None, **kwargs: Any) -> ChatResult:
        return self._run(self._relay.chat(request, **kwargs))  # type: ignore[no-any-return]

    def stream(self, request: ChatRequest | None = None, **kwargs: Any) -> Iterable[Chunk]:
        agen = self._relay.stream(request, **kwargs)
        while True:
            try:
                yield self._run(agen.__anext__())
            except StopAsyncIteration:
                return

    def close(self) -> None:
        self._run(self._relay.aclose())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    def __enter__(self) -> SyncRelay:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["LLMRelayError", "Relay", "SyncRelay"]
