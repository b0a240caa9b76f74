"""Router: resolve the public model name to its deployments, pick one, retry, fail over.

This is the innermost layer. For each request it orders the model group's deployments with the
configured strategy (``routing.strategy``, or ``ctx.strategy`` per request; ``ctx.deployment`` pins
one), then tries them: every deployment once in that order (failover), plus up to
``routing.retries`` further attempts. A deployment is skipped while its circuit breaker is open,
while it cools down after a 429, or while it has no rate capacity left (its rpm/tpm); if every
deployment is skipped the router waits for the first to free up, within the deadline.

Retries spread across deployments: an untried deployment is always preferred, so a failing one is
never hammered; going back to one already tried waits a full-jitter backoff that honours
``Retry-After``. Only errors with ``retryable`` are retried; a broken or misconfigured deployment
(401/403/404 from the upstream) is routed around but not retried. Context-window and
content-policy errors move to the model group configured in ``routing.context_window_fallbacks`` /
``routing.content_policy_fallbacks``.

Timeouts: each attempt gets ``routing.timeout_s`` (for a stream: until its first chunk), the whole
request ``routing.deadline_s`` (attempts, backoff and waits; not the tail of a stream that has
started). A stream fails over only while nothing has been yielded; after that the error propagates
to ``llmrelay.routing.recovery``, which continues it on the same or the next deployment.

It sets ``ctx.provider``, ``ctx.provider_kind``, ``ctx.upstream_model`` and ``ctx.attempts``
before the first chunk leaves, and ``ctx.usage`` / ``ctx.cost_usd`` (``services.pricing.apply``)
whenever usage arrives.
"""

from __future__ import annotations

import random
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from ..config import Deployment
from ..context import RequestContext
from ..errors import (
    ContentPolicyError,
    ContextWindowExceededError,
    LLMRelayError,
    ModelNotFoundError,
    ProviderResponseError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    RateLimitError,
)
from ..pipeline import Handler
from ..providers.base import Provider
from ..providers.choices import provider_complete, provider_stream
from ..ratelimit.estimate import estimate_tokens
from ..ratelimit.queue import FairQueue
from ..routing.circuit import STATE_VALUE
from ..routing.health import register_health_checks, router_status
from ..routing.recovery import StreamRecovery
from ..routing.retry import Backoff, default_backoff, is_deployment_fault
from ..routing.state import DeploymentState, deployment_states, ensure_state
from ..routing.strategies import STRATEGIES
from ..routing.timer import Timer
from ..services import Services
from ..streaming import closing
from ..types import ChatRequest, Chunk
from ._upstream_gate import open_gate

__all__ = ["Router", "build", "router_status"]

# Cooldown after a 429 that gave no Retry-After, seconds.
DEFAULT_COOLDOWN_S = 1.0
# Longest a request waits for a deployment to free up when no deadline is configured, seconds.
DEFAULT_MAX_WAIT_S = 30.0
# services.state key of an injected random source (a random.Random), for deterministic tests.
RANDOM_KEY = "routing.random"
QUEUE_KEY = "ratelimit.queue"


def shared_queue(services: Services) -> FairQueue:
    """The process's rate-limit waiting room (shared with the ratelimit layer)."""
    queue: FairQueue = services.state.setdefault(QUEUE_KEY, FairQueue(services.clock))
    return queue


def build(services: Services, next: Handler | None) -> Handler:
    router = Router(services)
    register_health_checks(services, router.table)
    return router.handle


class Router:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.settings = settings = services.settings
        self.routing = settings.routing
        self.clock = services.clock
        rng: random.Random = services.state.setdefault(RANDOM_KEY, random.Random())
        self.rand: Callable[[], float] = rng.random
        self.backoff: Backoff = default_backoff(self.routing.backoff.base_s, self.routing.backoff.max_s, self.rand)
        self.table = deployment_states(services.state, settings, self.clock)
        self.groups: dict[str, tuple[DeploymentState, ...]] = {
            name: tuple(self.table[f"{d.provider}/{d.model}"] for d in deps) for name, deps in settings.models.items()
        }
        self.providers = services.providers
        self.pricing = services.pricing
        self.metrics = services.metrics
        # One span per upstream attempt when tracing is on (llmrelay.ops.tracing); None costs nothing.
        self.tracing: Any = services.state.get("ops.tracing")
        rl = getattr(settings, "ratelimit", None)
        self.max_wait_s: float = getattr(rl, "max_wait_s", None) or DEFAULT_MAX_WAIT_S
        self.queue = shared_queue(services)
        # Mid-stream recovery: streams are continued on the same or the next deployment when they
        # break after chunks were sent (llmrelay.routing.recovery).
        self.recovery = StreamRecovery.from_services(services, self)
        # provider -> its bound "ok" attempts counter: labels() on every success costs a lock and a
        # dict lookup; providers are few (bounded by the configuration).
        self._ok_attempts: dict[str, Any] = {}

    # ---- resolving names ---------------------------------------------------------------------------

    def resolve(self, model: str) -> tuple[DeploymentState, ...]:
        deps = self.groups.get(model)
        if deps:
            return deps
        prov, sep, upstream = model.partition("/")
        if sep and prov in self.providers:
            # "provider/model" reaches a configured provider directly.
            dep = Deployment(provider=prov, model=upstream)
            return (ensure_state(self.table, self.settings, dep, self.clock),)
        raise ModelNotFoundError(
            f"model {model!r} is not configured; available models: {', '.join(sorted(self.groups)) or 'none'}",
            param="model",
        )

    def candidates(self, request: ChatRequest, ctx: RequestContext) -> list[DeploymentState]:
        deps: Sequence[DeploymentState] = self.resolve(request.model)
        pin = ctx.deployment
        if pin:
            pinned = [d for d in deps if pin in (d.key, d.provider)]
            if not pinned:
                raise ModelNotFoundError(f"no deployment {pin!r} in model group {request.model!r}", param="model")
            deps = pinned
        name = ctx.strategy or self.routing.strategy
        strategy = STRATEGIES.get(name)
        if strategy is None:
            raise ModelNotFoundError(f"unknown routing strategy {name!r}; known: {', '.join(sorted(STRATEGIES))}")
        return strategy(deps, self.rand)

    # ---- the layer ---------------------------------------------------------------------------------

    def handle(self, request: ChatRequest, ctx: RequestContext) -> AsyncIterator[Chunk]:
        ctx.model_group = ctx.model_group or request.model
        if request.model in self.routing.context_window_fallbacks or request.model in self.routing.content_policy_fallbacks:
            return self._with_fallbacks(request, ctx)
        # No fallback group to move to: the attempts themselves, no generator level per chunk.
        return self._routed(request, ctx, self._deadline())

    def _deadline(self) -> float | None:
        return None if self.routing.deadline_s is None else self.clock.monotonic() + self.routing.deadline_s

    def _routed(self, request: ChatRequest, ctx: RequestContext, deadline: float | None) -> AsyncIterator[Chunk]:
        attempts = self._attempts(request, ctx, deadline)
        if request.stream:
            # Continuations are not bound by the deadline: it covers the wait for a first chunk.
            attempts = self.recovery.run(request, ctx, attempts, lambda r: self._attempts(r, ctx, None))
        return attempts

    async def _with_fallbacks(self, request: ChatRequest, ctx: RequestContext) -> AsyncIterator[Chunk]:
        deadline = self._deadline()
        seen: set[str] = {request.model}
        while True:
            try:
                attempts = self._routed(request, ctx, deadline)
                # Closed explicitly, so a client that goes away reaches the upstream response now,
                # not when the garbage collector finalizes the generators.
                async with closing(attempts):
                    async for chunk in attempts:
                        yield chunk
                return
            except (ContextWindowExceededError, ContentPolicyError) as exc:
                fallbacks = (
                    self.routing.context_window_fallbacks
                    if isinstance(exc, ContextWindowExceededError)
                    else self.routing.content_policy_fallbacks
                )
                target = fallbacks.get(request.model)
                if target is None or target in seen or ctx.first_chunk_mono is not None:
                    raise
                seen.add(target)
                request = request.with_model(target)

    async def _attempts(self, request: ChatRequest, ctx: RequestContext, deadline: float | None) -> AsyncIterator[Chunk]:
        order = self.candidates(request, ctx)
        # Deferred work a layer above armed for requests that go upstream and nothing opened yet.
        await open_gate(ctx)
        # The estimate feeds deployment rate limits only (rpm/tpm): none configured, none needed.
        tokens = estimate_tokens(request) if any(d.limit is not None for d in order) else 0
        budget = len(order) + self.routing.retries
        tried: set[str] = set()
        last: LLMRelayError | None = None
        retry_n = 0
        for attempt in range(1, budget + 1):
            dep = await self._pick(order, tried, tokens, deadline, last, ctx)
            if dep.key in tried:
                retry_n += 1
                if not await self._backoff(retry_n, last, deadline):
                    break
            tried.add(dep.key)
            ctx.attempts = attempt
            if attempt > 1 and self.metrics is not None and last is not None:
                self.metrics.retries.labels(dep.provider, last.code).inc()
            sent = False
            try:
                if not request.stream:
                    # The whole answer in one await: no generator (and no closing) per attempt.
                    chunks = await self._complete(dep, request, ctx, deadline, tokens)
                    sent = True
                    for chunk in chunks:
                        yield chunk
                    return
                async with closing(self._call(dep, request, ctx, deadline, tokens)) as call:
                    async for chunk in call:
                        sent = True
                        yield chunk
                return
            except LLMRelayError as exc:
                last = exc
                if sent or not (exc.retryable or is_deployment_fault(exc)):
                    raise
                if not exc.retryable:
                    # A broken deployment: others may serve, but never retry this one.
                    order = [d for d in order if d is not dep]
                    if not order:
                        raise
        assert last is not None
        raise last

    # ---- choosing a deployment ---------------------------------------------------------------------

    async def _pick(
        self,
        order: list[DeploymentState],
        tried: set[str],
        tokens: int,
        deadline: float | None,
        last: LLMRelayError | None,
        ctx: RequestContext,
    ) -> DeploymentState:
        """The first usable deployment, untried ones first. When every one is open, cooling down
        or out of rate capacity, the request waits in the shared priority queue (high before low,
        round-robin among keys) within the deadline, or ``ratelimit.max_wait_s`` without one."""
        dep, wait, limited = self._first_usable(order, tried, tokens)
        if dep is not None:
            return dep
        found: list[DeploymentState] = []
        why = [wait, limited]

        def try_admit() -> float:
            d, w, lim = self._first_usable(order, tried, tokens)
            if d is not None:
                found.append(d)
                return 0.0
            why[:] = [w, lim]
            return w

        max_wait = self.max_wait_s if deadline is None else max(0.0, deadline - self.clock.monotonic())
        owner = ctx.key_id or ctx.user or "anonymous"
        try:
            await self.queue.acquire(try_admit, ctx.priority, owner, max_wait)
        except RateLimitError:
            raise self._unavailable(order, float(why[0]), bool(why[1]), last) from None
        return found[-1]

    def _first_usable(
        self, order: list[DeploymentState], tried: set[str], tokens: int
    ) -> tuple[DeploymentState | None, float, bool]:
        """(deployment, 0, _) or (None, seconds until one may free up, whether rate limits are why)."""
        now = self.clock.monotonic()
        wait = float("inf")
        limited = False
        for pool in (False, True):
            for d in order:
                if (d.key in tried) is not pool:
                    continue
                if not d.breaker.available():
                    wait = min(wait, d.breaker.retry_in)
                    continue
                if d.cooling(now):
                    wait, limited = min(wait, d.cooldown_until - now), True
                    continue
                if d.limit is not None:
                    w = d.limit.try_acquire(tokens)
                    if w > 0.0:
                        wait, limited = min(wait, w), True
                        continue
                if d.breaker.allow():
                    return d, 0.0, False
        return None, max(wait, 0.001), limited

    def _unavailable(
        self, order: list[DeploymentState], wait: float, limited: bool, last: LLMRelayError | None
    ) -> LLMRelayError:
        if limited:
            return RateLimitError(
                f"every deployment of this model is at its rate limit or cooling down after a 429; "
                f"retry in {wait:.1f} s",
                retry_after=wait,
            )
        names = ", ".join(d.key for d in order)
        return ProviderUnavailableError(
            f"no deployment is available ({names}: circuit open after repeated failures); "
            f"retry in {wait:.1f} s" + (f"; last error: {last}" if last else ""),
            retry_after=wait,
        )

    async def _backoff(self, retry_n: int, last: LLMRelayError | None, deadline: float | None) -> bool:
        delay = self.backoff(retry_n, last)
        if deadline is not None and self.clock.monotonic() + delay >= deadline:
            return False
        if delay > 0:
            await self.clock.sleep(delay)
        return True

    # ---- one attempt -------------------------------------------------------------------------------

    def _attempt_timeout(self, deadline: float | None) -> float:
        timeout = self.routing.timeout_s
        if deadline is not None:
            timeout = min(timeout, max(0.0, deadline - self.clock.monotonic()))
        return timeout

    def _begin(self, dep: DeploymentState, request: ChatRequest, ctx: RequestContext) -> tuple[Provider, ChatRequest, Any]:
        """An attempt starts: (its provider, the request with the upstream model name, its span)."""
        provider = self.providers[dep.provider]
        ctx.provider, ctx.provider_kind, ctx.upstream_model = dep.provider, provider.settings.kind, dep.model
        dep.in_flight += 1
        span = self.tracing.start_attempt(ctx, dep.provider, provider.settings.kind, dep.model) if self.tracing else None
        return provider, request.with_model(dep.model), span

    def _end(self, dep: DeploymentState, ctx: RequestContext, span: Any) -> None:
        dep.in_flight -= 1
        if span is not None:
            self.tracing.end_attempt(span, ctx, sys.exc_info()[1])

    def _timed_out(self, dep: DeploymentState, timeout: float) -> ProviderTimeoutError:
        err = ProviderTimeoutError(
            f"no answer within {timeout:.1f} s (routing.timeout_s / deadline_s)", provider=dep.provider
        )
        self._failed(dep, err, counts=True)
        return err

    async def _complete(
        self, dep: DeploymentState, request: ChatRequest, ctx: RequestContext, deadline: float | None, tokens: int
    ) -> tuple[Chunk, ...]:
        """One non-streamed attempt: the answer as chunks, accounted."""
        provider, upstream, span = self._begin(dep, request, ctx)
        t0 = self.clock.monotonic()
        timeout = self._attempt_timeout(deadline)
        first = True
        try:
            timer = Timer(timeout)
            try:
                result = await provider_complete(provider, upstream)
            finally:
                timer.stop()
            self._succeeded(dep, t0)
            first = False
            chunks = result.to_chunks()
            for chunk in chunks:
                self._account(chunk, ctx, dep, tokens)
            return chunks
        except TimeoutError:
            raise self._timed_out(dep, timeout) from None
        except LLMRelayError as exc:
            exc.provider = exc.provider or dep.provider
            self._failed(dep, exc, counts=first)
            raise
        finally:
            self._end(dep, ctx, span)

    async def _call(
        self, dep: DeploymentState, request: ChatRequest, ctx: RequestContext, deadline: float | None, tokens: int
    ) -> AsyncIterator[Chunk]:
        """One streamed attempt: its first chunk within the attempt's timeout, then the rest."""
        provider, upstream, span = self._begin(dep, request, ctx)
        t0 = self.clock.monotonic()
        timeout = self._attempt_timeout(deadline)
        first = True
        try:
            async with closing(provider_stream(provider, upstream)) as stream:
                try:
                    timer = Timer(timeout)
                    try:
                        chunk = await anext(stream)
                    finally:
                        timer.stop()
                except StopAsyncIteration:
                    raise ProviderResponseError("the upstream sent an empty stream", provider=dep.provider) from None
                self._succeeded(dep, t0)
                first = False
                self._account(chunk, ctx, dep, tokens)
                yield chunk
                async for chunk in stream:
                    self._account(chunk, ctx, dep, tokens)
                    yield chunk
        except TimeoutError:
            raise self._timed_out(dep, timeout) from None
        except LLMRelayError as exc:
            exc.provider = exc.provider or dep.provider
            self._failed(dep, exc, counts=first)
            raise
        finally:
            self._end(dep, ctx, span)

    def _account(self, chunk: Chunk, ctx: RequestContext, dep: DeploymentState, tokens: int) -> None:
        if chunk.usage is None:
            return
        ctx.usage = chunk.usage
        if self.pricing is not None:
            self.pricing.apply(ctx)
        if dep.limit is not None and chunk.finish_reason is not None:
            dep.limit.correct_now(chunk.usage.total_tokens - tokens)

    def _succeeded(self, dep: DeploymentState, t0: float) -> None:
        dep.observe_latency(self.clock.monotonic() - t0)
        dep.successes += 1
        before = dep.breaker.state
        dep.breaker.record_success()
        if before != "closed":
            self._gauge(dep)
        if self.metrics is not None:
            child = self._ok_attempts.get(dep.provider)
            if child is None:
                child = self._ok_attempts[dep.provider] = self.metrics.upstream_attempts.labels(dep.provider, "ok")
            child.inc()

    def _failed(self, dep: DeploymentState, exc: LLMRelayError, *, counts: bool) -> None:
        dep.failures += 1
        dep.last_error = f"{exc.code}: {exc.message}"[:300]
        if self.metrics is not None:
            self.metrics.upstream_attempts.labels(dep.provider, exc.code).inc()
        if isinstance(exc, RateLimitError):
            if exc.retryable:
                wait = exc.retry_after if exc.retry_after is not None else DEFAULT_COOLDOWN_S
                dep.cooldown_until = max(dep.cooldown_until, self.clock.monotonic() + wait)
            return
        if not is_deployment_fault(exc):
            # The request's fault (400...), not the deployment's: the breaker stays as it is, but
            # a half-open trial did reach a working upstream.
            if dep.breaker.state == "half_open":
                dep.breaker.record_success()
                self._gauge(dep)
            return
        before = dep.breaker.state
        dep.breaker.record_failure()
        if dep.breaker.state != before:
            self._gauge(dep)

    def _gauge(self, dep: DeploymentState) -> None:
        if self.metrics is not None:
            self.metrics.circuit_state.labels(dep.provider, dep.model).set(STATE_VALUE[dep.breaker.state])


def status(services: Services) -> list[dict[str, Any]]:
    """Alias of :func:`llmrelay.routing.health.router_status`."""
    return router_status(services)
