"""The accounting layer (outermost): every request leaves one usage-ledger row and its metrics.

Answered, cached, joined, refused, failed or abandoned by the client (``GeneratorExit`` /
``CancelledError``: what was used is still accounted). The work here is cheap and synchronous: the
row is a frozen dataclass appended to the ledger writer's queue; formatting and I/O happen in the
writer's background task. Behind an HTTP edge even that runs after the response has been sent
(``RequestContext.defer``); the end time is taken when the stream ends, so latencies are unchanged.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator
from typing import Any

from ..context import RequestContext
from ..cost.ledger import COLUMNS, LedgerRow
from ..errors import LLMRelayError
from ..pipeline import Handler
from ..services import Services
from ..streaming import has_content
from ..types import ChatRequest, Chunk, Message, Tool, Usage
from .cache import KEY_NOTE as CACHE_KEY_NOTE


def prompt_hashes(request: ChatRequest) -> tuple[str, str | None, int]:
    """(hash of the whole prompt, hash of its stable prefix, prefix size in characters/4)."""
    whole = hashlib.blake2b(digest_size=12)
    prefix = hashlib.blake2b(digest_size=12)
    whole.update(request.model.encode())
    prefix_chars = 0
    for m in request.messages:
        text = m.text().encode()
        whole.update(m.role.encode() + b"\0" + text + b"\1")
        if m.role == "system":
            prefix.update(text)
            prefix_chars += len(text)
    for tool in request.tools:
        blob = (tool.name + (tool.description or "") + repr(sorted(tool.parameters.items()))).encode()
        whole.update(blob)
        prefix.update(blob)
        prefix_chars += len(blob)
    return whole.hexdigest(), (prefix.hexdigest() if prefix_chars else None), prefix_chars // 4


class HitHashes:
    """:func:`prompt_hashes` of answers served from the cache, remembered by cache key: a hot entry
    is hit by the same prompt again and again. An entry is used only when the request's model,
    messages and tools (everything the hashes read) equal the remembered ones, so the row is the
    same as hashing anew whatever the cache key covers. Bounded (entries hold their messages).

        hashes = HitHashes()
        whole, prefix, prefix_tokens = hashes.get(request, ctx)  # == prompt_hashes(request)
    """

    __slots__ = ("_entries", "max_entries")

    def __init__(self, max_entries: int = 256) -> None:
        self._entries: dict[str, tuple[str, tuple[Message, ...], tuple[Tool, ...], tuple[str, str | None, int]]] = {}
        self.max_entries = max_entries

    def get(self, request: ChatRequest, ctx: RequestContext) -> tuple[str, str | None, int]:
        key = ctx.notes.get(CACHE_KEY_NOTE) if ctx.cache_status == "hit" else None
        if key is None:
            return prompt_hashes(request)
        seen = self._entries.get(key)
        if seen is not None and seen[0] == request.model and seen[1] == request.messages and seen[2] == request.tools:
            return seen[3]
        hashes = prompt_hashes(request)
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[key] = (request.model, request.messages, request.tools, hashes)
        return hashes


# (status, usage) of a request as they were when its stream ended.
End = tuple[str, "Usage | None"]
_TOKEN_KINDS = ("input", "output", "cache_read", "cache_write", "reasoning")
# Bound on the cached metric children (distinct model/provider/status combinations seen).
_MAX_CHILDREN = 4096


class _Children:
    """The metric children of one (model, provider): ``labels()`` looks up a label tuple under a
    lock on every call, which was 3.6% of the gateway's CPU; these are looked up once."""

    __slots__ = ("cost", "latency", "tokens", "ttft")

    def __init__(self, metrics: Any, model: str, provider: str) -> None:
        self.latency = metrics.request_latency.labels(model=model, provider=provider)
        self.ttft = metrics.ttft.labels(model=model, provider=provider)
        self.cost = metrics.cost.labels(model=model, provider=provider)
        self.tokens = tuple(metrics.tokens.labels(model=model, provider=provider, kind=k) for k in _TOKEN_KINDS)


class _Metrics:
    """Request metrics, with the children of each label set bound once (bounded)."""

    __slots__ = ("children", "counted", "metrics")

    def __init__(self, metrics: Any) -> None:
        self.metrics = metrics
        self.children: dict[tuple[str, str], _Children] = {}
        self.counted: dict[tuple[str, str, str], Any] = {}

    def _children(self, model: str, provider: str) -> _Children:
        c = self.children.get((model, provider))
        if c is None:
            if len(self.children) >= _MAX_CHILDREN:
                self.children.clear()
            c = self.children[(model, provider)] = _Children(self.metrics, model, provider)
        return c

    def _requests(self, model: str, provider: str, status: str) -> Any:
        requests = self.counted.get((model, provider, status))
        if requests is None:
            if len(self.counted) >= _MAX_CHILDREN:
                self.counted.clear()
            requests = self.counted[(model, provider, status)] = self.metrics.requests.labels(
                model=model, provider=provider, status=status)
        return requests

    def observe(self, model: str, provider: str, ctx: RequestContext, stream: bool, end: End) -> None:
        c = self._children(model, provider)
        self._requests(model, provider, end[0]).inc()
        latency, ttft, u = ctx.latency_s, ctx.ttft_s, end[1]
        if latency is not None:
            c.latency.observe(latency)
        if ttft is not None and stream:
            c.ttft.observe(ttft)
        if u is not None:
            for child, n in zip(c.tokens, (u.input_tokens, u.output_tokens, u.cache_read_tokens,
                                           u.cache_write_tokens, u.reasoning_tokens), strict=True):
                if n:
                    child.inc(n)
        if ctx.cost_usd:
            c.cost.inc(ctx.cost_usd)


def audit_summary(audit: Any, model: str, ctx: RequestContext, status: str | None = None) -> None:
    """The request summary on the audit chain (DESIGN: "audit log"); queued, sealed in batches off
    the request path. Never prompt or answer text; the user only as a pseudonym."""
    cost = ctx.cost_usd
    audit.record("request", {"request_id": ctx.request_id, "key_id": ctx.key_id, "model": model,
                             "provider": ctx.provider, "status": status or ctx.status,
                             # round() with digits costs ~0.25 us; a hit's or join's 0.0 is round already
                             "cost_usd": round(cost, 8) if cost else cost, "safety": ctx.safety_action},
                 user=ctx.user)


# LedgerRow's slots, set directly: a frozen dataclass's __init__ goes through object.__setattr__
# once per field (27 of them), about twice what the slot descriptors cost, on every request's row.
_ROW_SETTERS = tuple(getattr(LedgerRow, name).__set__ for name in COLUMNS)


def _new_row(values: tuple[Any, ...]) -> LedgerRow:
    """``LedgerRow(*values)`` (values in field order), without the frozen __init__. ``strict``:
    a field added to LedgerRow fails loudly here (and in the tests) instead of a short row."""
    row: LedgerRow = object.__new__(LedgerRow)
    for put, value in zip(_ROW_SETTERS, values, strict=True):
        put(row, value)
    return row


def ledger_row(request: ChatRequest, ctx: RequestContext, model: str, end: End | None = None,
               hashes: HitHashes | None = None) -> LedgerRow:
    """The request's usage-ledger row; ``end`` is (status, usage) as they were when it ended
    (an edge may change ``ctx`` while the answer is written), else read from ``ctx``."""
    status, u = end if end is not None else (ctx.status, ctx.usage)
    latency, ttft, error = ctx.latency_s, ctx.ttft_s, ctx.error
    whole, prefix, prefix_tokens = hashes.get(request, ctx) if hashes is not None else prompt_hashes(request)
    if u is None:
        tokens: tuple[int, ...] = (0, 0, 0, 0, 0)
    else:
        tokens = (u.input_tokens, u.output_tokens, u.cache_read_tokens, u.cache_write_tokens, u.reasoning_tokens)
    return _new_row((
        ctx.started_at, ctx.request_id, status, error.code if error is not None else None,
        ctx.key_id, ctx.user, ctx.team, ctx.session, model, ctx.provider, ctx.upstream_model, *tokens,
        ctx.cost_usd, ctx.cost_saved_usd, ctx.unpriced,
        latency * 1000 if latency is not None else None, ttft * 1000 if ttft is not None else None,
        ctx.cache_status, ctx.joined, whole, prefix, prefix_tokens,
        bool(u is not None and ctx.notes.get("usage_estimated")),
    ))


def final_status(exc: BaseException | None, ctx: RequestContext) -> str:
    """The ledger status of a request that ended (``exc`` None: its stream ran to the end)."""
    if exc is None:
        if ctx.status != "pending":
            return ctx.status
        return "cached" if ctx.cache_status == "hit" else "joined" if ctx.joined else "ok"
    if isinstance(exc, LLMRelayError):
        # Refused: the gateway said no (a 4xx: auth, budget, safety, limits, unknown model)
        # before any provider was called; anything else is a failure.
        return "refused" if exc.status < 500 and ctx.provider is None else "error"
    if isinstance(exc, (GeneratorExit, asyncio.CancelledError)):
        return "cancelled"
    return "error"


async def aclose(chunks: AsyncIterator[Chunk]) -> None:
    close = getattr(chunks, "aclose", None)
    if close is not None:
        await close()


def build(services: Services, next: Handler) -> Handler | None:
    writer = getattr(services, "ledger", None)
    observed = _Metrics(services.metrics) if services.metrics is not None else None
    audit = services.audit
    hashes = HitHashes()

    def record(request: ChatRequest, ctx: RequestContext) -> None:
        ctx.ended_mono = time.perf_counter()
        # The rest does not shape the answer: behind an HTTP edge it runs once the response is
        # out (ctx.defer), off the caller's latency; a library call records it here and now.
        # The outcome is taken now: the edge may still touch ctx while it writes the answer.
        end: End = (ctx.status, ctx.usage)
        if not ctx.defer(lambda: write(request, ctx, end)):
            write(request, ctx, end)

    def write(request: ChatRequest, ctx: RequestContext, end: End) -> None:
        model = ctx.model_group or request.model
        if observed is not None:
            observed.observe(model, ctx.provider or "", ctx, request.stream, end)
        if audit is not None:
            audit_summary(audit, model, ctx, end[0])
        if writer is not None:
            writer.submit(ledger_row(request, ctx, model, end, hashes))

    async def accounting(request: ChatRequest, ctx: RequestContext) -> AsyncIterator[Chunk]:
        inner = next(request, ctx)
        try:
            async for chunk in inner:
                # Time to first token: the first chunk with content, not a bare role/id chunk.
                if ctx.first_chunk_mono is None and has_content(chunk):
                    ctx.first_chunk_mono = time.perf_counter()
                yield chunk
            ctx.status = final_status(None, ctx)
        except LLMRelayError as exc:
            ctx.error = ctx.error or exc
            ctx.status = final_status(exc, ctx)
            raise
        except (GeneratorExit, asyncio.CancelledError, Exception) as exc:  # a client gone, a cancel, a bug
            ctx.status = final_status(exc, ctx)
            # Closed now, not whenever the collector finds it: the layers below (limits, budgets,
            # the upstream call) finish before the row is written.
            await aclose(inner)
            raise
        finally:
            record(request, ctx)

    return accounting
