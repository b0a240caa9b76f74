"""The budget layer: refuse a caller whose budget is used up, reserve the worst-case cost before the
upstream call, settle the real cost after.

On entry a read-only check refuses with :class:`~llmrelay.errors.BudgetExceededError` (429,
``budget_exceeded``) when a budget the caller falls under is used up or the emergency brake is on.
The worst-case reservation (refused the same way when it does not fit) is taken only once the
request is known to go upstream: the layer arms it (:mod:`._upstream_gate`) and the cache layer
takes it on a miss (the router is the safety net), so a cache hit, which costs nothing, never
touches the budget counters past the check. With the cache off the reservation is taken on entry,
as there is then no layer below that answers without an upstream call.

The reservation is settled however the call ends: answered (its real cost), failed or cancelled
(the prompt's cost if the upstream had started answering, else nothing), shielded from a cancel.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from ..context import RequestContext
from ..cost.budgets import Applied, BudgetManager, Reservation
from ..pipeline import Handler
from ..services import Services
from ..types import ChatRequest, Chunk
from ._upstream_gate import arm


class _Deferred:
    """One request's reservation, taken when the gate opens (or never, for a hit)."""

    __slots__ = ("applied", "closed", "estimator", "manager", "request", "res")

    def __init__(self, manager: BudgetManager, estimator: Any, request: ChatRequest,
                 applied: tuple[Applied, ...]) -> None:
        self.manager, self.estimator, self.request, self.applied = manager, estimator, request, applied
        self.res: Reservation | None = None
        self.closed = False

    async def take(self) -> None:
        # closed: the request already ended (a late opener must not leave a reservation behind).
        if self.res is None and not self.closed:
            self.res = await self.manager.reserve_applied(self.applied, self.estimator.worst_case(self.request))


def build(services: Services, next: Handler) -> Handler | None:
    manager = getattr(services, "budgets", None)
    estimator = services.state.get("cost.estimator")
    if manager is None or estimator is None:
        return None
    # Only the cache answers without an upstream call; without it deferring saves nothing.
    lazy = services.settings.cache.enabled

    def budget(request: ChatRequest, ctx: RequestContext) -> AsyncIterator[Chunk]:
        if not manager.rules and manager.brake is None:
            # No configured budget and no brake: only the key's own budget can apply (what
            # applicable() would find, without building its per-caller lookup key).
            key = ctx.key
            if key is None or not getattr(key, "budget_usd", None):
                return next(request, ctx)
        applied = manager.applicable(ctx, request.model)
        # No budget applies: the inner stream itself, no generator level per chunk.
        if not applied and manager.brake is None:
            return next(request, ctx)
        return reserved(request, ctx, applied)

    async def reserved(request: ChatRequest, ctx: RequestContext, applied: tuple[Applied, ...]) -> AsyncIterator[Chunk]:
        deferred = _Deferred(manager, estimator, request, applied)
        if lazy:
            await manager.check(applied)
            arm(ctx, deferred.take)
        else:
            await deferred.take()
        try:
            async for chunk in next(request, ctx):
                yield chunk
        finally:
            deferred.closed = True
            await _settle(manager, estimator, deferred.res, request, ctx, applied)

    return budget


async def _settle(manager: BudgetManager, estimator: Any, res: Reservation | None, request: ChatRequest,
                  ctx: RequestContext, applied: tuple[Applied, ...]) -> None:
    # A reservation that holds nothing (no budget applied) needs no settle task.
    if res is not None and res.settled:
        return
    actual = ctx.cost_usd
    if ctx.usage is None and ctx.first_chunk_mono is not None:
        actual = estimator.prompt_cost(request, ctx.provider, ctx.provider_kind, ctx.upstream_model)
    if res is None:
        # Nothing was reserved (a hit, a refusal, or no layer opened the gate): only real spend
        # (a path that reached an upstream without opening it) is counted.
        if actual > 0:
            await asyncio.shield(manager.charge(applied, actual))
        return
    # Shielded: a cancelled request must still give its reservation back.
    await asyncio.shield(manager.settle(res, actual))
