"""``/admin/audit/...``: the tamper-evident audit log (:mod:`llmrelay.safety.audit`).

- ``GET /admin/audit/verify[?head=MAC]``: walk the hash chain. The answer is **200 whatever the
  outcome**, with ``ok`` false and the first bad entry and why when the chain is broken: the check
  itself succeeded, and monitoring reads ``ok`` (a 4xx would read as "your request was wrong").
  ``head`` is an exported head mac that must still be in the chain (catches truncation).
- ``GET /admin/audit/head``: the chain head (id, mac, time), to keep outside for anchoring.
- ``GET /admin/audit/entries?limit=100&kind=safety&before=ID``: recent entries, newest first.
  Users appear only as pseudonyms (the chain never holds user ids); ``kind`` matches a kind and
  its sub-kinds (``admin`` matches ``admin.key_created``).

Queued entries are written first, so every action taken before the call is included.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from ..errors import InvalidRequestError, NotFoundError
from ..safety.audit_query import recent_entries
from ._asgi import Request, Response, json_response
from .admin import query
from .auth import require_admin

if TYPE_CHECKING:
    from ..safety.audit import AuditLog
    from ..safety.audit_store import AuditEntry
    from .app import Gateway

MAX_LIMIT = 1000


def register(gw: Gateway) -> None:
    from .openai_api import WIRE

    gw.route("GET", "/admin/audit/verify", WIRE, lambda req: verify(gw, req))
    gw.route("GET", "/admin/audit/head", WIRE, lambda req: head(gw, req))
    gw.route("GET", "/admin/audit/entries", WIRE, lambda req: entries(gw, req))


async def audit_log(gw: Gateway, req: Request) -> AuditLog:
    """The running audit log with its queue written out; 404 when auditing is off."""
    await require_admin(gw.auth, req.headers)
    log: AuditLog | None = gw.relay.services.audit
    if log is None:
        raise NotFoundError("the audit log is off (safety.audit: false in the config)")
    await log.flush()
    return log


async def verify(gw: Gateway, req: Request) -> Response:
    log = await audit_log(gw, req)
    result = await log.verify(query(req).get("head") or None)
    return json_response(result.to_dict())


async def head(gw: Gateway, req: Request) -> Response:
    log = await audit_log(gw, req)
    return json_response(await log.head())


def _int(params: dict[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not lo <= int(raw) <= hi:
        raise InvalidRequestError(f"{name}={raw!r}: use a whole number from {lo} to {hi}", param=name)
    return int(raw)


def entry_json(e: AuditEntry) -> dict[str, Any]:
    return {"id": e.id, "ts": e.ts, "kind": e.kind, "subject": e.subject, "data": orjson.loads(e.data),
            "prev": e.prev, "mac": e.mac}


async def entries(gw: Gateway, req: Request) -> Response:
    log = await audit_log(gw, req)
    params = query(req)
    limit = _int(params, "limit", 100, 1, MAX_LIMIT)
    before = _int(params, "before", 0, 1, 2**62) or None
    kind = params.get("kind") or None
    found = await recent_entries(log.store, limit, (kind,) if kind else None, before)
    return json_response({"object": "list", "data": [entry_json(e) for e in found],
                          "next_before": found[-1].id if len(found) == limit else None})
