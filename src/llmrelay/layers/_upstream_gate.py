"""Work a layer defers until the request is known to need an upstream call.

Some work is only worth doing for a request that will reach a provider: the budget layer's
worst-case reservation, for one, is wasted on a request that the cache answers (a hit costs
nothing). A layer *arms* such work on the request's context; the first layer below that knows the
request goes upstream (the cache layer on a miss, the router before its first attempt as the safety
net) *opens the gate*, which runs the armed work once, in order. Nothing runs for a request that
never goes upstream.

    async def reserve() -> None: ...          # may raise, e.g. BudgetExceededError
    arm(ctx, reserve)
    ...
    await open_gate(ctx)                      # runs reserve(); a second call does nothing

An error raised by armed work propagates from ``open_gate``, before anything is sent upstream.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ..context import RequestContext

Armed = Callable[[], Awaitable[None]]

# Where the armed work waits (ctx.notes is copied into a dedup flight's context; the gate is
# opened before that copy is made, so a flight never runs its first caller's work again).
NOTE = "upstream.armed"


def arm(ctx: RequestContext, work: Armed) -> None:
    """Run ``work`` when (and only if) this request is about to go upstream."""
    armed: list[Armed] | None = ctx.notes.get(NOTE)
    if armed is None:
        ctx.notes[NOTE] = [work]
    else:
        armed.append(work)


async def open_gate(ctx: RequestContext) -> None:
    """The request goes upstream: run what was armed, once."""
    armed: list[Armed] | None = ctx.notes.pop(NOTE, None)
    if armed:
        for work in armed:
            await work()
