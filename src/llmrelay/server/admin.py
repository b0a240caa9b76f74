"""The admin API (master key): virtual keys, reload, cache, router, and the shared helpers of the
``admin_*`` modules (usage, budgets, audit, privacy).

``POST /admin/keys`` answers like ``llmrelay keys create --json``: ``{"id", "key"}`` (the key is
shown once), plus the key's record; ``GET /admin/keys`` lists records (never secrets);
``GET /admin/keys/{id}``; ``DELETE /admin/keys/{id}`` revokes at once. ``GET /admin/router``
shows circuit states and deployment stats. Every action that changes something is audited
(``admin.*`` entries on the audit chain; a reload is audited by the reloader itself).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from ..errors import LLMRelayError, NotFoundError
from ..keys import KeySpec, parse_duration
from ._asgi import Request, Response, json_response
from ._validate import bad, lst, obj, opt_int, opt_num, opt_str, string
from .auth import require_admin

if TYPE_CHECKING:
    from .app import Gateway

_FIELDS = frozenset({"name", "user", "team", "models", "budget_usd", "budget_period", "rpm", "tpm", "policy",
                     "priority", "expires", "expires_at"})


def register(gw: Gateway) -> None:
    from .openai_api import WIRE

    gw.route("POST", "/admin/keys", WIRE, lambda req: create_key(gw, req))
    gw.route("GET", "/admin/keys", WIRE, lambda req: list_keys(gw, req))
    gw.route("GET", "/admin/keys/{id}", WIRE, lambda req: get_key(gw, req))
    gw.route("DELETE", "/admin/keys/{id}", WIRE, lambda req: revoke_key(gw, req))
    gw.route("POST", "/admin/reload", WIRE, lambda req: reload_config(gw, req))
    gw.route("DELETE", "/admin/cache", WIRE, lambda req: clear_cache(gw, req))
    gw.route("GET", "/admin/router", WIRE, lambda req: router(gw, req))
    from . import admin_audit, admin_budgets, admin_privacy, admin_usage

    for module in (admin_usage, admin_budgets, admin_audit, admin_privacy):
        module.register(gw)


def query(req: Request) -> dict[str, str]:
    """The query string's parameters (the last value wins)."""
    return dict(parse_qsl(req.scope.get("query_string", b"").decode("latin-1")))


# How long an admin read waits for queued ledger rows to be written before answering without them.
LEDGER_FLUSH_TIMEOUT_S = 5.0


class LedgerUnavailableError(LLMRelayError):
    status = 503
    code = "ledger_unavailable"


async def flush_ledger(gw: Gateway) -> int:
    """Write the ledger's queued rows; returns how many are still queued (0 when all written).

    One flush task per writer at a time, left running when it times out (a store that is down
    keeps the rows queued; the task ends once it recovers), so admin calls never pile up work."""
    services = gw.relay.services
    writer = services.ledger
    if writer is None:
        return 0
    task: asyncio.Task[None] | None = services.state.get("admin.ledger_flush")
    if task is None or task.done():
        task = services.state["admin.ledger_flush"] = asyncio.ensure_future(writer.flush())
    done, _ = await asyncio.wait({task}, timeout=LEDGER_FLUSH_TIMEOUT_S)
    if done:
        task.result()
        return 0
    return max(1, int(writer.depth))


def audit_action(gw: Gateway, kind: str, data: Mapping[str, Any], user: str | None = None) -> None:
    """Append an admin action to the audit chain (queued; sealed off the request path)."""
    audit = gw.relay.services.audit
    if audit is not None:
        audit.record(kind, data, user=user)


async def clear_cache(gw: Gateway, req: Request) -> Response:
    """``DELETE /admin/cache`` (all), ``?model=M`` (one model group), ``?key=K`` (one entry)."""
    from ..caching.admin import clear_cache_query

    await require_admin(gw.auth, req.headers)
    result = await clear_cache_query(gw.relay.services, query(req))
    audit_action(gw, "admin.cache_cleared", result)
    return json_response(result)


async def router(gw: Gateway, req: Request) -> Response:
    """``GET /admin/router``: one row per deployment (circuit, in flight, latency, counts)."""
    from ..routing.health import router_status

    await require_admin(gw.auth, req.headers)
    return json_response({"object": "list", "data": router_status(gw.relay.services)})


def key_spec(body: Any, now: float) -> KeySpec:
    """A KeySpec from an admin request body; unknown fields are refused, so typos are not lost."""
    body = obj(body, "body")
    unknown = sorted(set(body) - _FIELDS)
    if unknown:
        bad(unknown[0], f"unknown field; known fields: {', '.join(sorted(_FIELDS))}")
    models = body.get("models") or []
    if isinstance(models, str):
        models = [m for m in models.split(",") if m]
    expires_at = opt_num(body, "expires_at", 0, 1e12)
    expires = opt_str(body, "expires")
    if expires:
        expires_at = now + parse_duration(expires)
    return KeySpec(
        name=string(body.get("name"), "name"),
        user=opt_str(body, "user"), team=opt_str(body, "team"),
        models=tuple(string(m, f"models.{i}") for i, m in enumerate(lst(models, "models"))),
        budget_usd=opt_num(body, "budget_usd", 0, 1e12), budget_period=opt_str(body, "budget_period"),
        rpm=opt_int(body, "rpm"), tpm=opt_int(body, "tpm"), policy=opt_str(body, "policy"),
        priority=opt_str(body, "priority") or "normal", expires_at=expires_at,
    ).validate()


async def create_key(gw: Gateway, req: Request) -> Response:
    await require_admin(gw.auth, req.headers)
    spec = key_spec(await req.json(gw.max_body_bytes), gw.relay.services.clock.time())
    key, secret = await gw.auth.create(spec)
    audit_action(gw, "admin.key_created", {"key_id": key.id, "name": key.name, "team": key.team}, user=key.user)
    return json_response({"id": key.id, "key": secret, **key.public()}, status=201)


async def list_keys(gw: Gateway, req: Request) -> Response:
    await require_admin(gw.auth, req.headers)
    keys = await gw.auth.store.list()
    return json_response({"object": "list", "data": [k.public() for k in keys]})


async def get_key(gw: Gateway, req: Request) -> Response:
    await require_admin(gw.auth, req.headers)
    key = await gw.auth.store.get(req.params["id"])
    if key is None:
        raise NotFoundError(f"no key with id {req.params['id']!r}")
    return json_response(key.public())


async def revoke_key(gw: Gateway, req: Request) -> Response:
    await require_admin(gw.auth, req.headers)
    if not await gw.auth.revoke(req.params["id"]):
        raise NotFoundError(f"no key with id {req.params['id']!r}")
    audit_action(gw, "admin.key_revoked", {"key_id": req.params["id"]})
    return json_response({"id": req.params["id"], "revoked": True})


async def reload_config(gw: Gateway, req: Request) -> Response:
    """Re-read the config file (llmrelay.ops.reload): 200 with what changed and what needs a
    restart, or 422 with every problem (the running config stays)."""
    await require_admin(gw.auth, req.headers)
    result = await gw.reloader.reload("api")
    return json_response(result.to_json(), status=200 if result.ok else 422)
