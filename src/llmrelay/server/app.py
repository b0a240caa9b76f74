"""The gateway's ASGI app, built from a :class:`~llmrelay.relay.Relay`.

    from llmrelay import Relay
    from llmrelay.server.app import create_app
    import uvicorn

    app = create_app(Relay.from_file("llmrelay.yaml"))
    uvicorn.run(app, host="127.0.0.1", port=4000)

Routing is one dict lookup (plus a short list for paths with an ``{id}``); each edge module
registers its routes with :meth:`Gateway.route`, giving the wire format its errors are written in.
The ASGI lifespan starts the relay and, on a graceful shutdown, closes it so background work drains.
"""

from __future__ import annotations

import ipaddress
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..config import Settings
from ..context import RequestContext
from ..errors import LLMRelayError, NotFoundError
from ..keys import Authenticator
from ..relay import Relay
from ._asgi import ClientGone, Receive, Request, Response, Scope, Send, StreamResponse
from ._chat import Wire, ctx_headers, error_response, unexpected

Handler = Callable[[Request], Awaitable[Response | StreamResponse]]


@dataclass(frozen=True, slots=True)
class Route:
    wire: Wire
    handler: Handler
    # A model call: a refusal before the pipeline (bad key, bad body) still gets its ledger row.
    accounted: bool = False


class MethodNotAllowed(NotFoundError):
    status = 405
    code = "method_not_allowed"


class Gateway:
    """The ASGI application. ``relay`` is the library object every route calls into."""

    def __init__(self, relay: Relay) -> None:
        self.relay = relay
        self.started = False
        self.closing = False
        self.started_at = time.time()
        self._exact: dict[tuple[str, str], Route] = {}
        # (method, path split on "/", route) for paths with parameters such as /admin/keys/{id}.
        self._patterns: list[tuple[str, tuple[str, ...], Route]] = []
        self._paths: set[str] = set()
        # Browser origins allowed to call the gateway (server.cors_origins; "*" allows any).
        self._cors = frozenset(relay.settings.server.cors_origins)
        from ..ops.reload import ConfigReloader
        from . import admin, anthropic_api, dashboard, health, openai_api, openapi

        # Hot reload of the config file (llmrelay.ops.reload): file watch, SIGHUP, /admin/reload.
        self.reloader = ConfigReloader(relay, prepare=with_env_master_key)
        for module in (openai_api, anthropic_api, admin, health, openapi, dashboard):
            module.register(self)

    def route(self, method: str, path: str, wire: Wire, handler: Handler, *, accounted: bool = False) -> None:
        r = Route(wire, handler, accounted)
        if "{" in path:
            self._patterns.append((method, tuple(path.strip("/").split("/")), r))
        else:
            self._exact[(method, path)] = r
        self._paths.add(path)

    @property
    def auth(self) -> Authenticator:
        auth: Authenticator = self.relay.services.keys
        return auth

    @property
    def max_body_bytes(self) -> int:
        return self.relay.settings.server.max_body_bytes

    def _match(self, method: str, path: str) -> tuple[Route | None, dict[str, str], bool]:
        """The route, its path parameters, and whether the path exists under another method."""
        route = self._exact.get((method, path))
        if route is not None:
            return route, {}, True
        parts = tuple(path.strip("/").split("/"))
        other = any(p == path for (_, p) in self._exact)
        for m, pattern, r in self._patterns:
            if len(pattern) != len(parts):
                continue
            params = {}
            for want, got in zip(pattern, parts, strict=True):
                if want.startswith("{"):
                    params[want[1:-1]] = got
                elif want != got:
                    break
            else:
                if m == method:
                    return r, params, True
                other = True
        return None, {}, other

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        method, path = scope["method"], scope["path"]
        if self._cors:
            send = self._with_cors(scope, send)
            if method == "OPTIONS":
                preflight = Response(204, b"", [])
                _add_relay_headers(preflight, None)
                await preflight.send(send, receive)
                return
        route, params, exists = self._match(method, path)
        req = Request(scope, receive, params)
        if route is None:
            from .openai_api import WIRE

            err: LLMRelayError = (MethodNotAllowed(f"{method} is not allowed on {path}") if exists
                                  else NotFoundError(f"no such endpoint: {method} {path}"))
            missing = error_response(WIRE, err, None)
            _add_relay_headers(missing, None)
            await missing.send(send, receive)
            return
        try:
            response = await route.handler(req)
        except LLMRelayError as exc:
            if route.accounted:
                await self._account_refusal(req, exc)
            response = error_response(route.wire, exc, req.ctx)
        except ClientGone:
            return
        except Exception as exc:
            response = error_response(route.wire, unexpected(exc), req.ctx)
        _add_relay_headers(response, req.ctx)
        await response.send(send, receive)

    async def _account_refusal(self, req: Request, exc: LLMRelayError) -> None:
        """A model call refused before (or outside) the pipeline gets its row like any other."""
        ctx = req.ctx
        if ctx is None:
            ctx = req.ctx = RequestContext(protocol="http", credential=None)
        if ctx.status != "pending":
            return  # the pipeline's accounting layer has recorded it
        ctx.credential = None
        try:
            await self.relay.account(ctx, ctx.model_group or "", exc)
        except Exception as err:  # recording must never turn a clean refusal into a 500
            unexpected(err)

    def _with_cors(self, scope: Scope, send: Send) -> Send:
        """Add CORS headers for an allowed browser origin (server.cors_origins; "*" allows any)."""
        origin = next((v for k, v in scope["headers"] if k == b"origin"), None)
        if origin is None or not ("*" in self._cors or origin.decode("latin-1") in self._cors):
            return send
        extra = [(b"access-control-allow-origin", origin), (b"vary", b"origin"),
                 (b"access-control-allow-headers", b"authorization, x-api-key, content-type, anthropic-version, "
                                                   b"x-llmrelay-user, x-llmrelay-session, x-llmrelay-priority, x-llmrelay-cache"),
                 (b"access-control-allow-methods", b"GET, POST, DELETE, OPTIONS"),
                 (b"access-control-expose-headers", b"x-llmrelay-request-id, x-llmrelay-provider, "
                                                    b"x-llmrelay-cost-usd, x-llmrelay-cache")]

        async def cors_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        return cors_send

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.relay.start()
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                self.started = True
                await self.reloader.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.closing = True
                try:
                    await self.reloader.stop()
                    await self.relay.aclose()
                finally:
                    await send({"type": "lifespan.shutdown.complete"})
                return


def _add_relay_headers(response: Response | StreamResponse, ctx: RequestContext | None) -> None:
    """DESIGN: every response carries the x-llmrelay-* headers. Chat responses set them from
    their context; this fills them in on the rest (admin, health, metrics, unknown paths). Added to
    the response before it is sent, rather than by wrapping ``send``: no closure per request."""
    headers = response.headers
    for k, _ in headers:
        if k == b"x-llmrelay-request-id":
            return
    response.headers = [*headers, *ctx_headers(ctx if ctx is not None else RequestContext())]


def create_app(relay: Relay) -> Gateway:
    return Gateway(relay)


def create_app_from_env() -> Gateway:
    """The app factory each worker process calls (``uvicorn --factory``): the config comes from
    ``$LLMRELAY_CONFIG``, or the usual provider variables when it is unset."""
    from ..config import load_settings, settings_from_env

    path = os.environ.get("LLMRELAY_CONFIG")
    settings = load_settings(path) if path else settings_from_env()
    from ..ops.logging import configure_logging

    configure_logging(settings.logging)
    app = create_app(Relay(with_env_master_key(settings)))
    from .gc_tuning import tune_gc

    tune_gc(settings.server)  # a worker process serves: its start-up heap out of later collections
    return app


def with_env_master_key(settings: Settings, env: Mapping[str, str] | None = None) -> Settings:
    """The settings with ``$LLMRELAY_MASTER_KEY`` as master key when the config sets none."""
    key = (os.environ if env is None else env).get("LLMRELAY_MASTER_KEY")
    if settings.server.master_key or not key:
        return settings
    return settings.model_copy(update={"server": settings.server.model_copy(update={"master_key": key})})


def is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, master_key: str | None) -> str | None:
    """Why the gateway must not bind ``host``, or None: without a master key it runs open (any
    key accepted), which is only safe on a loopback address."""
    if master_key or is_loopback(host):
        return None
    return (
        f"refusing to listen on {host}: no master key is configured, so the gateway would accept any "
        "caller. Set server.master_key (or LLMRELAY_MASTER_KEY), or bind 127.0.0.1."
    )
