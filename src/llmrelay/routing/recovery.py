"""Mid-stream recovery: a stream that breaks or stalls after it started is continued, seamlessly.

The router hands every streamed call to :meth:`StreamRecovery.run`, which passes chunks through
(one ``await`` per chunk, no buffer, so a slow client slows the upstream read) and keeps the
stream's bookkeeping: ``ctx.tokens_so_far``, inter-chunk latency and tokens per second, the
``streams{outcome}`` metric, and an estimated ``ctx.usage`` (noted in ``ctx.notes``) when a stream
ends or is abandoned before the upstream reported its usage.

When the upstream breaks (:class:`~llmrelay.errors.StreamInterruptedError`, a dropped connection,
any retryable error) or stalls (no chunk for ``routing.stall_timeout_s``) after output started,
the text sent so far goes back as a trailing assistant message (a *prefill*) to the same
deployment, then to the next ones of the model group, each able to continue a partial answer
(``capabilities.prefill``, or ``options: {prefill: true}`` on a provider). The continuation is
spliced in: ids dropped, reasoning suppressed, and any repetition of the tail already sent trimmed,
so the client sees one answer with no repeated or missing text. Where that is impossible (a
tool call half sent, no deployment that continues prefills, attempts exhausted) the stream ends
with a ``StreamInterruptedError`` that says what to do.

    recovery = StreamRecovery(RecoveryPolicy(attempts=3, stall_timeout_s=10), router, clock)
    async for chunk in recovery.run(request, ctx, first_stream, lambda r: router_attempts(r, ctx)):
        ...
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from ..clock import Clock
from ..context import RequestContext
from ..errors import LLMRelayError, StreamInterruptedError
from ..providers.base import Provider
from ..streaming import Assembler, content_chars, estimate_usage, has_content, tokens_for_chars
from ..types import ChatRequest, Chunk, Message, Usage

# A continuation that repeats at least this many characters of the text already sent is trimmed;
# shorter matches are only trimmed when they are whitespace (a prefill's trailing space is removed
# by some APIs, which then start the continuation with it). Shorter non-blank repeats are
# indistinguishable from a legitimate continuation ("…Missi" + "ssippi").
MIN_OVERLAP = 6
# The longest repetition looked for; continuation text is held back while it still matches the
# tail of what was sent, up to this many characters.
OVERLAP_WINDOW = 512

Attempt = Callable[[ChatRequest], AsyncIterator[Chunk]]


class Target(Protocol):
    key: str
    provider: str


class RouterView(Protocol):
    """What recovery needs from the router: the model group's deployments and their providers."""

    @property
    def providers(self) -> Mapping[str, Provider]: ...

    def candidates(self, request: ChatRequest, ctx: RequestContext) -> Sequence[Any]: ...


@dataclass(frozen=True, slots=True)
class RecoveryPolicy:
    enabled: bool = True
    # Continuations per stream (a continuation that breaks again counts once more).
    attempts: int = 3
    stall_timeout_s: float | None = None


def supports_prefill(provider: Provider) -> bool:
    """Whether ``provider`` continues a trailing assistant message; ``options.prefill`` overrides
    the adapter's capability (local OpenAI-compatible servers continue one, OpenAI's API does not)."""
    opt = provider.settings.options.get("prefill")
    return bool(opt) if opt is not None else provider.capabilities.prefill


def overlap(sent: str, continuation: str) -> int:
    """How many leading characters of ``continuation`` repeat the end of ``sent``.

        >>> overlap("The quick brown fo", "brown fox jumps")
        8
        >>> overlap("Hello ", " world"), overlap("Missi", "ssippi")
        (1, 0)
    """
    tail = sent[-OVERLAP_WINDOW:]
    for k in range(min(len(tail), len(continuation)), 0, -1):
        head = continuation[:k]
        if tail.endswith(head) and (k >= MIN_OVERLAP or head.isspace()):
            return k
    return 0


# Usage is immutable: one shared zero for every stream's "no earlier attempt".
_NO_USAGE = Usage()


class _Splice:
    """The state of one client-facing stream across its upstream attempts."""

    __slots__ = ("asm", "attempt", "attempt_chars", "attempt_usage", "chars", "held", "holding", "prior",
                 "recoveries", "request_used", "sent_text", "yielded")

    def __init__(self, request: ChatRequest, attempt: Attempt) -> None:
        self.attempt = attempt
        self.yielded = 0
        self.asm = Assembler()
        self.chars = 0
        self.attempt_chars = 0
        self.attempt_usage: Usage | None = None
        # Usage of the attempts that broke (reported or estimated), added to the final one's.
        self.prior = _NO_USAGE
        self.recoveries = 0
        self.request_used = request
        self.holding = False
        self.held = ""
        self.sent_text = ""

    def admit(self, chunk: Chunk) -> Chunk | None:
        """The chunk to send for an upstream chunk (trimmed, de-duplicated), or None."""
        if self.recoveries:
            chunk = replace(chunk, id=None, model=None, reasoning="", reasoning_signature=None)
            if self.holding and chunk.text:
                self.held += chunk.text
                if self.held in self.sent_text[-OVERLAP_WINDOW:] and len(self.held) < OVERLAP_WINDOW and not chunk.finish_reason:
                    chunk = replace(chunk, text="")
                else:
                    chunk = replace(chunk, text=self._release())
            elif self.holding and (chunk.finish_reason or chunk.tool_calls):
                chunk = replace(chunk, text=self._release())
        if chunk.usage is not None:
            self.attempt_usage = chunk.usage
            if self.recoveries:
                chunk = replace(chunk, usage=self.prior + chunk.usage)
        # A signature-only chunk is kept: it signs the thinking block that is still open.
        if not (has_content(chunk) or chunk.reasoning_signature or chunk.finish_reason or chunk.usage
                or chunk.id or chunk.model):
            return None
        n = content_chars(chunk)
        self.chars += n
        self.attempt_chars += n
        self.asm.add(chunk)
        return chunk

    def _release(self) -> str:
        text, self.held, self.holding = self.held[overlap(self.sent_text, self.held):], "", False
        return text

    def flush(self) -> Chunk | None:
        """Held text at the end of a continuation that never sent a finish chunk."""
        if not self.holding:
            return None
        text = self._release()
        if not text:
            return None
        chunk = Chunk(text=text)
        self.chars += len(text)
        self.attempt_chars += len(text)
        self.asm.add(chunk)
        return chunk

    def broke(self, ctx: RequestContext) -> None:
        """Account the attempt that just broke and prepare for its continuation."""
        output = tokens_for_chars(self.attempt_chars)
        if self.attempt_usage is not None:
            used = replace(self.attempt_usage, output_tokens=max(self.attempt_usage.output_tokens, output))
        else:
            used = replace(estimate_usage(self.request_used, 0), output_tokens=output)
            ctx.notes["usage_estimated"] = True
        self.prior = self.prior + used
        self.attempt_chars, self.attempt_usage = 0, None
        self.recoveries += 1
        self.sent_text = self.asm.text
        self.holding, self.held = bool(self.sent_text), ""


class StreamRecovery:
    def __init__(self, policy: RecoveryPolicy, router: RouterView, clock: Clock,
                 metrics: Any = None, pricing: Any = None) -> None:
        self.policy = policy
        self.router = router
        self.clock = clock
        self.metrics = metrics
        self.pricing = pricing
        # provider -> its chunk-interval histogram child: labels() per chunk (a lock and a dict
        # lookup) was most of the metrics cost of a stream; providers are few (the configuration).
        self._intervals: dict[str, Any] = {}

    @classmethod
    def from_services(cls, services: Any, router: RouterView) -> StreamRecovery:
        r = services.settings.routing
        policy = RecoveryPolicy(r.stream_recovery, r.stream_recovery_attempts, r.stall_timeout_s)
        return cls(policy, router, services.clock, services.metrics, services.pricing)

    async def run(self, request: ChatRequest, ctx: RequestContext, stream: AsyncIterator[Chunk],
                  attempt: Attempt) -> AsyncIterator[Chunk]:
        """The client-facing stream: ``stream`` continued through ``attempt`` when it breaks."""
        s = _Splice(request, attempt)
        outcome = "failed"
        started = last = self.clock.monotonic()
        try:
            while True:
                try:
                    # The router times each attempt's first chunk (routing.timeout_s); the
                    # watchdog covers the gaps after it.
                    chunk = await anext(stream, None)
                    # No stall watchdog (the default): the next chunk without a coroutine level each.
                    watched = self.policy.enabled and self.policy.stall_timeout_s is not None
                    while chunk is not None:
                        now = self.clock.monotonic()
                        out = s.admit(chunk)
                        if out is not None:
                            self._observe(ctx, s, out, now - last)
                            last = now
                            s.yielded += 1
                            yield out
                        chunk = await (self._next(stream) if watched else anext(stream, None))
                    tail = s.flush()
                    if tail is not None:
                        yield tail
                    outcome = "recovered" if s.recoveries else "completed"
                    return
                except LLMRelayError as exc:
                    self._check(exc, s)
                    broke_at = self.clock.monotonic()
                    with contextlib.suppress(Exception):
                        await _aclose(stream)
                    targets = self._targets(request, ctx, s, exc)
                    s.broke(ctx)
                    stream = self._continue(request, ctx, s, targets, broke_at)
        except (GeneratorExit, asyncio.CancelledError):
            outcome = "cancelled"
            raise
        finally:
            await _aclose(stream)
            self._finish(request, ctx, s, outcome, self.clock.monotonic() - started)

    async def _next(self, stream: AsyncIterator[Chunk]) -> Chunk | None:
        """The next chunk, or a StreamInterruptedError after ``stall_timeout_s`` of silence."""
        stall = self.policy.stall_timeout_s if self.policy.enabled else None
        if stall is None:
            return await anext(stream, None)
        try:
            async with asyncio.timeout(stall):
                return await anext(stream, None)
        except TimeoutError:
            raise StreamInterruptedError(
                f"the upstream stalled: no chunk for {stall:g} s (routing.stall_timeout_s)"
            ) from None

    # ---- continuing -----------------------------------------------------------------------------

    def _check(self, exc: LLMRelayError, s: _Splice) -> None:
        """Raise when the break cannot be recovered; return when a continuation may be tried."""
        if not self.policy.enabled or not (exc.retryable or isinstance(exc, StreamInterruptedError)):
            raise exc
        if s.asm.has_partial_tool_call:
            raise StreamInterruptedError(
                f"the upstream stream broke in the middle of a tool call ({exc.message}); a tool call cannot "
                "be continued, retry the request", provider=exc.provider,
            ) from exc
        if s.recoveries >= self.policy.attempts:
            raise StreamInterruptedError(
                f"the upstream stream broke and {s.recoveries} continuation(s) failed too ({exc.message}); "
                "retry the request (routing.stream_recovery_attempts sets how often the gateway tries)",
                provider=exc.provider,
            ) from exc

    def _targets(self, request: ChatRequest, ctx: RequestContext, s: _Splice, exc: LLMRelayError) -> list[str]:
        """Deployment keys that can continue, the one that broke first; raises when there is none."""
        needs_prefill = bool(s.asm.text)
        current = f"{ctx.provider}/{ctx.upstream_model}"
        keys = []
        for d in self.router.candidates(request, ctx):
            provider = self.router.providers.get(d.provider)
            if provider is not None and (not needs_prefill or supports_prefill(provider)):
                keys.append(d.key)
        if not keys:
            raise StreamInterruptedError(
                f"the upstream stream broke ({exc.message}) and no deployment of {request.model!r} can continue "
                "a partial answer; retry the request, or set `options: {prefill: true}` on a provider that "
                "continues a trailing assistant message", provider=exc.provider,
            ) from exc
        keys.sort(key=lambda k: k != current)
        return keys

    def continuation(self, request: ChatRequest, s: _Splice) -> ChatRequest:
        """The request that asks for the rest of the answer: the text so far as a prefill."""
        if not s.sent_text:
            return request
        max_tokens = request.max_tokens
        if max_tokens is not None:
            max_tokens = max(1, max_tokens - tokens_for_chars(s.chars))
        return replace(request, messages=(*request.messages, Message.assistant(s.sent_text)),
                       reasoning=None, max_tokens=max_tokens)

    async def _continue(self, request: ChatRequest, ctx: RequestContext, s: _Splice,
                        targets: list[str], broke_at: float) -> AsyncIterator[Chunk]:
        # The same deployment first (a dropped connection is usually transient), then the others.
        key = targets[min(s.recoveries - 1, len(targets) - 1)]
        cont = self.continuation(request, s)
        s.request_used = cont
        pin = ctx.deployment
        ctx.deployment = key
        stream = s.attempt(cont)
        try:
            first = await anext(stream, None)
        finally:
            ctx.deployment = pin
        ctx.recovered = True
        if self.metrics is not None:
            self.metrics.stream_recovery.labels(ctx.provider or "").observe(self.clock.monotonic() - broke_at)
        if first is not None:
            yield first
            async for chunk in stream:
                yield chunk

    # ---- bookkeeping ----------------------------------------------------------------------------

    def _observe(self, ctx: RequestContext, s: _Splice, chunk: Chunk, gap: float) -> None:
        ctx.tokens_so_far = s.asm.usage.output_tokens if s.asm.usage is not None else tokens_for_chars(s.chars)
        if chunk.usage is not None and s.recoveries:
            # The router priced the continuation alone; the answer is all attempts together.
            ctx.usage = chunk.usage
            if self.pricing is not None:
                self.pricing.apply(ctx)
        if self.metrics is not None and s.yielded:
            provider = ctx.provider or ""
            child = self._intervals.get(provider)
            if child is None:
                child = self._intervals[provider] = self.metrics.stream_chunk_interval.labels(provider)
            child.observe(gap)

    def _finish(self, request: ChatRequest, ctx: RequestContext, s: _Splice, outcome: str, elapsed: float) -> None:
        if s.recoveries and s.asm.usage is None:
            ctx.usage = s.prior + estimate_usage(s.request_used, s.attempt_chars)
            ctx.notes["usage_estimated"] = True
        elif ctx.usage is None and (s.chars or outcome == "cancelled"):
            ctx.usage = estimate_usage(request, s.chars)
            ctx.notes["usage_estimated"] = True
        if ctx.usage is not None:
            ctx.tokens_so_far = ctx.usage.output_tokens
            if self.pricing is not None and ctx.notes.get("usage_estimated"):
                self.pricing.apply(ctx)
        if self.metrics is None or not (s.yielded or outcome == "cancelled"):
            return  # a stream that never started is a failed request, counted by accounting
        self.metrics.streams.labels(outcome).inc()
        if outcome in ("completed", "recovered") and elapsed > 0 and ctx.tokens_so_far:
            self.metrics.stream_tokens_per_second.labels(ctx.provider or "").observe(ctx.tokens_so_far / elapsed)


async def _aclose(stream: AsyncIterator[Chunk]) -> None:
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        await aclose()
