"""The web dashboard (``GET /dashboard``), behind the master key.

A browser logs in with a form that takes the master key; the answer sets an HttpOnly,
SameSite=Strict session cookie, ``<expiry>.<nonce>.<HMAC-SHA256>``, signed with a key derived from
the master key (so every worker accepts it, and rotating the master key ends every session). API
clients can skip the cookie and send the master key (``Authorization: Bearer`` or ``x-api-key``).

Routes: ``GET /dashboard`` (the page, or the login form), ``POST /dashboard/login``,
``POST /dashboard/logout``, ``GET /dashboard/static/{name}`` (the page's JS and CSS: no CDN, works
offline) and ``GET /admin/dashboard/data?hours=24`` (the JSON the page polls every few seconds,
see :func:`llmrelay.ops.dashboard_data.dashboard_data`).
"""

from __future__ import annotations

import hashlib
import hmac
import html
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from ..errors import InvalidRequestError, NotFoundError, PermissionDeniedError
from ._asgi import Request, Response, json_response
from .auth import credential

if TYPE_CHECKING:
    from .app import Gateway

COOKIE = "llmrelay_session"
SESSION_TTL_S = 12 * 3600
STATIC = Path(__file__).parent / "static"
_STATIC_TYPES = {".js": b"text/javascript; charset=utf-8", ".css": b"text/css; charset=utf-8",
                 ".svg": b"image/svg+xml"}
# Everything the page loads comes from this origin; no inline script can run.
_SECURITY_HEADERS = [
    (b"content-security-policy", b"default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
                                 b"form-action 'self'; base-uri 'none'"),
    (b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"), (b"x-frame-options", b"DENY"),
]


def register(gw: Gateway) -> None:
    from .openai_api import WIRE

    gw.route("GET", "/dashboard", WIRE, lambda req: page(gw, req))
    gw.route("POST", "/dashboard/login", WIRE, lambda req: login(gw, req))
    gw.route("POST", "/dashboard/logout", WIRE, lambda req: logout(gw, req))
    gw.route("GET", "/dashboard/static/{name}", WIRE, lambda req: static(gw, req))
    gw.route("GET", "/admin/dashboard/data", WIRE, lambda req: data(gw, req))


# ---- sessions --------------------------------------------------------------------------------------


def _signing_key(master_key: str) -> bytes:
    return hmac.new(master_key.encode(), b"llmrelay dashboard session v1", hashlib.sha256).digest()


def make_session(master_key: str, now: float, ttl_s: float = SESSION_TTL_S) -> str:
    payload = f"{int(now + ttl_s)}.{os.urandom(12).hex()}"
    mac = hmac.new(_signing_key(master_key), payload.encode(), hashlib.sha256).hexdigest()
    return f"{payload}.{mac}"


def check_session(master_key: str, value: str, now: float) -> bool:
    expiry, _, rest = value.partition(".")
    nonce, _, mac = rest.partition(".")
    if not (expiry.isdigit() and nonce and mac) or int(expiry) < now:
        return False
    want = hmac.new(_signing_key(master_key), f"{expiry}.{nonce}".encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(want, mac)


def _cookies(req: Request) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in req.headers.get("cookie", "").split(";"):
        name, sep, value = part.strip().partition("=")
        if sep:
            out[name] = value
    return out


async def is_admin(gw: Gateway, req: Request) -> bool:
    """A valid session cookie, the master key in a header, or an open (keyless, loopback) gateway."""
    master = gw.relay.settings.server.master_key
    if not master:
        return bool(gw.auth.open)
    session = _cookies(req).get(COOKIE)
    if session and check_session(master, session, time.time()):
        return True
    if credential(req.headers) is None:
        return False
    who = await gw.auth.authenticate(credential(req.headers))
    return bool(who.is_admin)


def _cookie(req: Request, value: str, max_age: int) -> tuple[bytes, bytes]:
    secure = "; Secure" if req.scope.get("scheme") == "https" else ""
    return (b"set-cookie", f"{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}".encode())


# ---- routes ----------------------------------------------------------------------------------------


def _html(body: str, status: int = 200, extra: list[tuple[bytes, bytes]] | None = None) -> Response:
    return Response(status, body.encode(), [(b"content-type", b"text/html; charset=utf-8"), *_SECURITY_HEADERS,
                                            *(extra or [])])


def login_page(error: str | None = None) -> str:
    template = (STATIC / "login.html").read_text(encoding="utf-8")
    message = f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""
    return template.replace("<!--ERROR-->", message)


async def page(gw: Gateway, req: Request) -> Response:
    if not await is_admin(gw, req):
        return _html(login_page())
    return _html((STATIC / "dashboard.html").read_text(encoding="utf-8"))


async def login(gw: Gateway, req: Request) -> Response:
    raw = await req.body(64 * 1024)
    key = (parse_qs(raw.decode("utf-8", "replace")).get("key") or [""])[0].strip()
    master = gw.relay.settings.server.master_key
    if not master:
        return Response(303, b"", [(b"location", b"/dashboard")])
    if not (key and hmac.compare_digest(key.encode(), master.encode())):
        return _html(login_page("That is not the master key."), status=401)
    session = make_session(master, time.time())
    return Response(303, b"", [(b"location", b"/dashboard"), _cookie(req, session, SESSION_TTL_S),
                               *_SECURITY_HEADERS])


async def logout(gw: Gateway, req: Request) -> Response:
    return Response(303, b"", [(b"location", b"/dashboard"), _cookie(req, "", 0)])


async def static(gw: Gateway, req: Request) -> Response:
    name = req.params["name"]
    ctype = _STATIC_TYPES.get(Path(name).suffix)
    path = STATIC / name
    # Only plain file names of known types from the static folder (no "..", no subfolders).
    if ctype is None or "/" in name or "\\" in name or name.startswith(".") or not path.is_file():
        raise NotFoundError(f"no dashboard asset {name!r}")
    return Response(200, path.read_bytes(), [(b"content-type", ctype), (b"cache-control", b"max-age=300"),
                                             (b"x-content-type-options", b"nosniff")])


async def data(gw: Gateway, req: Request) -> Response:
    if not await is_admin(gw, req):
        raise PermissionDeniedError("the dashboard data needs the master key or a dashboard session")
    query = parse_qs(req.scope.get("query_string", b"").decode("latin-1"))
    try:
        hours = float((query.get("hours") or ["24"])[0])
    except ValueError:
        raise InvalidRequestError("hours must be a number", param="hours") from None
    if not 0 < hours <= 24 * 90:
        raise InvalidRequestError("hours must be between 0 and 2160 (90 days)", param="hours")
    from ..ops.dashboard_data import dashboard_data

    body = await dashboard_data(gw.relay.services, hours=hours, reloader=gw.reloader)
    return json_response(body, headers=[(b"cache-control", b"no-store")])
