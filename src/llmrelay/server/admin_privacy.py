"""``/admin/privacy/...``: GDPR access and erasure over every store registered in
``services.privacy`` (:mod:`llmrelay.safety.privacy`: audit log, usage ledger, key store), the same
registry ``llmrelay privacy export/erase`` uses.

- ``GET /admin/privacy/export?user=U``: everything held about U, per store.
- ``POST /admin/privacy/erase`` with ``{"user": "U"}``: erase U from every store. The audit chain
  keeps verifying: U's pseudonym salt and stored content go, chain links stay. The erasure itself
  is audited without the user, so nothing left links back to them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import InvalidRequestError
from ._asgi import Request, Response, json_response
from ._validate import obj, string
from .admin import audit_action, query
from .auth import require_admin

if TYPE_CHECKING:
    from .app import Gateway


def register(gw: Gateway) -> None:
    from .openai_api import WIRE

    gw.route("GET", "/admin/privacy/export", WIRE, lambda req: export(gw, req))
    gw.route("POST", "/admin/privacy/erase", WIRE, lambda req: erase(gw, req))


def _user(value: Any) -> str:
    user = string(value, "user").strip() if value is not None else ""
    if not user:
        raise InvalidRequestError("user: give the user id to export or erase (?user=U, or {\"user\": \"U\"})",
                                  param="user")
    return user


async def _flush_audit(gw: Gateway) -> None:
    # Entries still queued for this user must be sealed under their current pseudonym first:
    # sealed after erasure they would get a new one, linking the user again.
    audit = gw.relay.services.audit
    if audit is not None:
        await audit.flush()


async def export(gw: Gateway, req: Request) -> Response:
    await require_admin(gw.auth, req.headers)
    user = _user(query(req).get("user"))
    registry = gw.relay.services.privacy
    await _flush_audit(gw)
    data = await registry.export(user)
    audit_action(gw, "privacy.export", {"stores": registry.names}, user=user)
    return json_response({"user": user, "stores": data})


async def erase(gw: Gateway, req: Request) -> Response:
    await require_admin(gw.auth, req.headers)
    body = obj(await req.json(gw.max_body_bytes), "body")
    user = _user(body.get("user"))
    registry = gw.relay.services.privacy
    await _flush_audit(gw)
    result = await registry.erase(user)
    audit_action(gw, "privacy.erase", {"stores": registry.names})
    return json_response({"erased": True, "stores": result})
