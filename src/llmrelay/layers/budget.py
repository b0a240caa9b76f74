"""The budget layer: reserve the worst-case cost before the call, settle the real cost after.

Refuses with :class:`~llmrelay.errors.BudgetExceededError` (429, ``budget_exceeded``) when a
budget the caller falls under could not absorb the worst case. The reservation is settled however
the call ends: answered (its real cost), failed or cancelled (the prompt's cost if the upstream
had started answering, else nothing).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from ..context import RequestContext
from ..pipeline import Handler
from ..services import Services
from ..types import ChatRequest, Chunk


def build(services: Services, next: Handler) -> Handler | None:
    manager = getattr(services, "budgets", None)
    estimator = services.state.get("cost.estimator")
    if manager is None or estimator is None:
        return None

    def budget(request: ChatRequest, ctx: RequestContext) -> AsyncIterator[Chunk]:
        # No budget applies: the inner stream itself, no generator level per chunk.
        if not manager.applicable(ctx, request.model) and manager.brake is None:
            return next(request, ctx)
        return reserved(request, ctx)

    async def reserved(request: ChatRequest, ctx: RequestContext) -> AsyncIterator[Chunk]:
        res = await manager.reserve(ctx, estimator.worst_case(request), request.model)
        try:
            async for chunk in next(request, ctx):
                yield chunk
        finally:
            # A reservation that holds nothing (no budget applied) needs no settle task.
            if not res.settled:
                actual = ctx.cost_usd
                if ctx.usage is None and ctx.first_chunk_mono is not None:
                    actual = estimator.prompt_cost(request, ctx.provider, ctx.provider_kind, ctx.upstream_model)
                # Shielded: a cancelled request must still give its reservation back.
                await asyncio.shield(manager.settle(res, actual))

    return budget
