"""Credentials and caller context from HTTP headers.

Keys come as ``Authorization: Bearer KEY`` (OpenAI SDKs) or ``x-api-key: KEY`` (Anthropic SDKs).
Caller context comes from the ``x-llmrelay-*`` headers (see DESIGN.md, "Caller context").
"""

from __future__ import annotations

from collections.abc import Mapping

from ..context import RequestContext
from ..errors import InvalidRequestError, PermissionDeniedError
from ..keys import EDGE_IDENTITY, Authenticator, Identity

_PRIORITIES = frozenset({"high", "normal", "low"})
_CACHE_MODES = frozenset({"no-store", "refresh"})


def credential(headers: Mapping[str, str]) -> str | None:
    auth = headers.get("authorization")
    if auth:
        scheme, _, token = auth.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    key = headers.get("x-api-key")
    return key.strip() if key and key.strip() else None


def caller_context(headers: Mapping[str, str], protocol: str) -> RequestContext:
    """A RequestContext with the caller fields the headers give; 400 for an invalid value."""
    ctx = RequestContext(protocol=protocol, credential=credential(headers))
    if not headers:
        return ctx
    user = headers.get("x-llmrelay-user")
    if user:
        ctx.user = user
    session = headers.get("x-llmrelay-session")
    if session:
        ctx.session = session
    priority = headers.get("x-llmrelay-priority")
    if priority:
        if priority not in _PRIORITIES:
            raise InvalidRequestError(f"x-llmrelay-priority must be high, normal or low; got {priority!r}")
        ctx.priority = priority  # type: ignore[assignment]
    cache = headers.get("x-llmrelay-cache")
    if cache:
        if cache not in _CACHE_MODES:
            raise InvalidRequestError(f"x-llmrelay-cache must be no-store or refresh; got {cache!r}")
        ctx.cache_mode = cache  # type: ignore[assignment]
    return ctx


async def authenticate(auth: Authenticator, ctx: RequestContext) -> Identity:
    """Check the caller's key before anything else is read (401 on a refused key)."""
    who = await auth.authenticate(ctx.credential)
    # For the identity layer; the credential's identity, not the secret (notes may be read by anyone).
    ctx.notes[EDGE_IDENTITY] = (id(ctx.credential), who)
    ctx.is_admin = who.is_admin
    if who.key is not None:
        ctx.key, ctx.key_id, ctx.key_name = who.key, who.key.id, who.key.name
    return who


async def require_admin(auth: Authenticator, headers: Mapping[str, str]) -> None:
    """Admin endpoints need the master key; with none configured they are closed to everyone
    except loopback callers of an open gateway (which accepts any key by contract)."""
    who = await auth.authenticate(credential(headers))
    if who.is_admin or auth.open:
        return
    raise PermissionDeniedError("this endpoint needs the master key (server.master_key or LLMRELAY_MASTER_KEY)")
