"""The dedup layer: an identical request already in flight? Join it instead of calling again.

"Identical" is the cache's canonical key (:mod:`llmrelay.caching.request_key`), so a streamed and
a non-streamed request join each other. Only deterministic requests join (temperature 0 or a
seed, n = 1) unless ``dedup.include_nondeterministic``: two sampling requests may rightly expect
different answers.

The first request starts a :class:`~llmrelay.caching.fanout.Flight`: the rest of the pipeline runs
in a pump task on a copy of its context, and every caller, the first included, reads the fan-out.
So the first caller leaving does not cancel the call for those who joined; the call is cancelled
only when every caller has gone. An upstream error reaches every caller.

Who pays: the first caller (``ctx.cost_usd``, its budget settles to it). If it leaves before the
answer is complete, the earliest caller still reading pays instead. Every other caller is
``ctx.joined = True`` with ``ctx.cost_usd = 0``, ``ctx.cost_saved_usd`` = the call's cost and
``ctx.usage`` = its usage (tokens served). The upstream is read only as fast as the fastest
caller reads (backpressure); a caller whose buffer (``dedup.buffer_chunks``) is full while another
keeps up is detached, and catches up in one chunk once it has read its buffer.

Across instances (cache shared through Redis, see :mod:`llmrelay.caching.fleet`), a flight's pump
first claims the key fleet-wide: if another instance is already calling upstream, the flight is
fed that call's answer from the shared cache once it is there, and every caller here is joined.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

from ..caching.decoded import HIT_NOTE
from ..caching.fanout import Flight, Subscriber
from ..caching.fleet import STORED_NOTE, FleetFlights, fleet_flights
from ..caching.key_memo import KeyMemo
from ..caching.service import scope_of
from ..context import RequestContext
from ..pipeline import Handler
from ..services import Services
from ..types import ChatRequest, Chunk
from .cache import KEY_NOTE, closable

_COPIED = ("provider", "provider_kind", "upstream_model", "attempts", "unpriced")


class Deduplicator:
    """The table of flights in progress, keyed by canonical request key."""

    def __init__(self, services: Services, next: Handler, fleet: FleetFlights | None = None) -> None:
        self.cfg = services.settings.dedup
        self.scope = services.settings.cache.scope
        self.metrics = services.metrics
        self.next = next
        self.fleet = fleet
        # Without the cache layer the key is made here (remembered by the caller's bytes).
        self.keys = KeyMemo()
        self._saved: Any = None  # the dedup child of cache_saved, bound on first use
        # Shared across settings generations, so a request during a reload still joins.
        self.flights: dict[str, Flight] = services.state.setdefault("dedup.flights", {})

    def eligible(self, request: ChatRequest) -> bool:
        return request.n == 1 and (request.deterministic or self.cfg.include_nondeterministic)

    def key(self, request: ChatRequest, ctx: RequestContext) -> str:
        key = ctx.notes.get(KEY_NOTE)
        return key if isinstance(key, str) else self.keys.key(request, ctx.protocol, scope_of(self.scope, ctx))

    def start(self, key: str, request: ChatRequest, ctx: RequestContext) -> Flight:
        flight = Flight(self.cfg.buffer_chunks)
        inner = copy.copy(ctx)
        inner.notes, inner.safety_findings = dict(ctx.notes), []
        flight.context = inner
        flight.task = asyncio.get_running_loop().create_task(self._pump(key, flight, request, inner))
        self.flights[key] = flight
        return flight

    async def _pump(self, key: str, flight: Flight, request: ChatRequest, ctx: RequestContext) -> None:
        try:
            # Closed explicitly: a pump cancelled while it waits for room closes the upstream now.
            async with aclosing(closable(self._upstream(key, request, ctx))) as upstream:
                async for chunk in upstream:
                    flight.publish(chunk)
                    # Backpressure: read the upstream on only when some reader has room for more.
                    await flight.wait_for_room()
        except asyncio.CancelledError:
            flight.finish(asyncio.CancelledError())
            raise
        except BaseException as exc:
            flight.finish(exc)
        else:
            flight.finish()
        finally:
            if self.flights.get(key) is flight:
                del self.flights[key]

    def _upstream(self, key: str, request: ChatRequest, ctx: RequestContext) -> AsyncIterator[Chunk]:
        # Fleet-wide only for a key the cache layer computed for a lookup: a refresh must not be
        # served the answer of a call that another instance started before it.
        if self.fleet is None or KEY_NOTE not in ctx.notes or ctx.cache_mode == "refresh":
            return self.next(request, ctx)
        return self.fleet.coordinated(key, request, ctx, self.next)

    async def handle(self, request: ChatRequest, ctx: RequestContext) -> AsyncIterator[Chunk]:
        key = self.key(request, ctx)
        flight = self.flights.get(key)
        leader = flight is None
        if flight is None:
            flight = self.start(key, request, ctx)
        elif self.metrics is not None:
            self.metrics.dedup_joined.inc()
        sub = flight.join()
        if leader:
            flight.payer = sub
        # Every caller is served the flight's chunks: an edge renders the answer once for all.
        ctx.notes[HIT_NOTE] = flight.answer
        inner: RequestContext = flight.context
        finished = False
        try:
            async for chunk in flight.read(sub):
                if ctx.provider is None:
                    _copy_route(inner, ctx)
                yield chunk
            finished = True
        finally:
            pump = self._settle(key, flight, sub, ctx, finished)
            if pump is not None:
                # The last caller left: wait for the pump to wind down, so the upstream response is
                # closed now (as without dedup), not at some later turn of the event loop.
                await asyncio.wait({pump})

    def _settle(self, key: str, flight: Flight, sub: Subscriber, ctx: RequestContext,
                finished: bool) -> asyncio.Task[None] | None:
        """Settle one caller's bill and route; the pump task when this caller's leaving cancelled it."""
        inner: RequestContext = flight.context
        cancelled: asyncio.Task[None] | None = None
        # inner.joined: the answer came from another instance's call, so nobody here pays.
        pays = flight.payer is sub and not inner.joined
        alone = flight.leave(sub)
        if pays and not flight.done and not alone:
            # The payer left mid-answer: the earliest caller still reading takes the bill.
            flight.payer, pays = flight.subscribers[0], False
        if alone and not flight.done and flight.task is not None:
            if self.flights.get(key) is flight:
                del self.flights[key]
            flight.task.cancel()
            cancelled = flight.task
        ctx.joined = not pays
        if not (finished or flight.done):
            return cancelled
        _copy_route(inner, ctx)
        ctx.usage = inner.usage
        if pays:
            ctx.cost_usd = inner.cost_usd
            if inner.notes.get(STORED_NOTE):
                ctx.notes[STORED_NOTE] = True
            return cancelled
        saved = inner.cost_saved_usd if inner.joined else inner.cost_usd
        ctx.cost_usd, ctx.cost_saved_usd = 0.0, saved
        if self.metrics is not None and saved:
            if self._saved is None:
                self._saved = self.metrics.cache_saved.labels(source="dedup")
            self._saved.inc(saved)
        return cancelled


def _copy_route(inner: RequestContext, ctx: RequestContext) -> None:
    for name in _COPIED:
        setattr(ctx, name, getattr(inner, name))


def build(services: Services, next: Handler) -> Handler | None:
    if not services.settings.dedup.enabled:
        return None
    dedup = Deduplicator(services, next, fleet_flights(services))

    # A plain function, not a generator wrapping one: closing the caller's stream then closes the
    # reader at once (a wrapper would leave the inner generator to the garbage collector).
    def deduplicated(request: ChatRequest, ctx: RequestContext) -> AsyncIterator[Chunk]:
        if not dedup.eligible(request):
            return next(request, ctx)
        return dedup.handle(request, ctx)

    return deduplicated

