"""The policy layer (see llmrelay.pipeline.LAYERS for its place on the request path).

Resolves the caller's effective safety policy (global, then team, then key overrides, then the
key's own ``policy`` level; see :mod:`llmrelay.safety.policy`) into ``ctx.policy``, once per
request, with the resolution cached per (key, team) for the life of this settings generation.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from ..context import RequestContext
from ..pipeline import Handler
from ..safety.policy import Policy, resolve_policy
from ..services import Services
from ..types import ChatRequest, Chunk

_MAX_CACHED = 4096


def build(services: Services, next: Handler) -> Handler | None:
    cfg = services.settings.safety
    cache: dict[tuple[str | None, str | None, str | None, str | None], Policy] = {}

    def policy_for(ctx: RequestContext) -> Policy:
        key = ctx.key
        kid = getattr(key, "id", None) or ctx.key_id
        kname = getattr(key, "name", None) or ctx.key_name
        level = getattr(key, "policy", None)
        team = ctx.team or getattr(key, "team", None)
        ck = (kid, kname, level, team)
        p = cache.get(ck)
        if p is None:
            if len(cache) >= _MAX_CACHED:
                cache.clear()
            ids = tuple(x for x in (kid, kname) if x)
            p = cache[ck] = resolve_policy(cfg, team=team, key_ids=ids, key_level=level)
        return p

    def layer(request: ChatRequest, ctx: RequestContext) -> AsyncIterator[Chunk]:
        # No async-generator level of its own: the work is synchronous and done before the inner
        # stream starts (the identity layer calls this only once it has identified the caller).
        ctx.policy = policy_for(ctx)
        return next(request, ctx)

    return layer
