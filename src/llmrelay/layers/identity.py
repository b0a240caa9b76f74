"""Identity: who is calling. Validates the presented key and fills ``ctx.key``, ``user`` and ``team``.

The edge puts the presented key in ``ctx.credential``. A call that came through an edge is checked
against the master key and the virtual keys (``services.keys``, an :class:`~llmrelay.keys.Authenticator`);
an in-process library call with no credential is trusted. A key limited to some models is refused
any other with 404 ``model_not_found``, as OpenAI answers for a model the caller cannot access.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator

from ..context import PRIORITY_RANK, RequestContext
from ..errors import ModelNotFoundError
from ..keys import EDGE_IDENTITY, Authenticator
from ..pipeline import Handler
from ..services import Services
from ..types import ChatRequest, Chunk
from ._prelude import Prelude

# Calls from these edges must present a credential check; library/CLI callers are in-process.
_TRUSTED = frozenset({"library", "cli"})


async def identify(auth: Authenticator, request: ChatRequest, ctx: RequestContext) -> None:
    """Fill the caller fields of ``ctx`` from its credential; raise if the call is refused."""
    if ctx.credential is None and ctx.protocol in _TRUSTED:
        return
    edge = ctx.notes.pop(EDGE_IDENTITY, None)
    # The edge checked this very credential a moment ago (the same request): not checked twice.
    who = edge[1] if edge is not None and edge[0] == id(ctx.credential) else await auth.authenticate(ctx.credential)
    # The secret is not needed past this point; dropping it keeps it out of anything that logs ctx.
    ctx.credential = None
    ctx.is_admin = who.is_admin
    key = who.key
    if key is None:
        return
    ctx.key, ctx.key_id, ctx.key_name = key, key.id, key.name
    # The key's owner wins over a user named in the request: a key is issued to someone.
    ctx.user = key.user or ctx.user
    ctx.team = key.team or ctx.team
    # A caller may lower its priority with a header, never raise it above its key's.
    if PRIORITY_RANK.get(key.priority, 1) > PRIORITY_RANK[ctx.priority] or ctx.priority == "normal":
        ctx.priority = key.priority  # type: ignore[assignment]
    if not key.allows(request.model):
        raise ModelNotFoundError(
            f"the model {request.model!r} does not exist or this key cannot use it; "
            f"this key may use: {', '.join(key.models)}",
            param="model",
        )


def build(services: Services, next: Handler) -> Handler | None:
    auth: Authenticator | None = services.keys
    if auth is None:
        return None

    # identify() itself is the check (no coroutine level around it per request).
    check = functools.partial(identify, auth)

    def handler(request: ChatRequest, ctx: RequestContext) -> AsyncIterator[Chunk]:
        # No generator level per chunk: the work is all before the first chunk.
        return Prelude(check, request, ctx, next)

    return handler
