"""Operations endpoints (no key needed): ``/health/live``, ``/health/ready``, ``/metrics``.

Ready means: started and not shutting down, at least one model group, every deployment's provider
built, and the key store reachable. A 503 says which of these failed, so an orchestrator's log
shows why a pod is held out of rotation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import LLMRelayError
from ._asgi import Request, Response, json_response

if TYPE_CHECKING:
    from .app import Gateway


def register(gw: Gateway) -> None:
    from .openai_api import WIRE

    gw.route("GET", "/health/live", WIRE, lambda req: live(gw, req))
    gw.route("GET", "/health/ready", WIRE, lambda req: ready(gw, req))
    gw.route("GET", "/metrics", WIRE, lambda req: metrics(gw, req))


async def live(gw: Gateway, req: Request) -> Response:
    return json_response({"status": "ok"})


async def ready(gw: Gateway, req: Request) -> Response:
    reasons: list[str] = []
    if gw.closing:
        reasons.append("shutting down")
    elif not gw.started:
        reasons.append("not started yet")
    services = gw.relay.services
    if not services.settings.models:
        reasons.append("no model groups configured (models: in the config)")
    for group, deps in services.settings.models.items():
        missing = [d.provider for d in deps if d.provider not in services.providers]
        if missing:
            reasons.append(f"model group {group!r} names providers that are not built: {', '.join(missing)}")
    try:
        await gw.auth.store.ping()
    except LLMRelayError as exc:
        reasons.append(f"key store: {exc}")
    stores = services.stores
    ping = getattr(stores, "ping", None)
    if ping is not None:
        try:
            await ping()
        except Exception as exc:
            reasons.append(f"stores: {exc}")
    # A refused reload does not make the gateway unready (the running config still serves), but
    # the body says so, with any setting that waits for a restart (llmrelay.ops.reload).
    config = gw.reloader.status()
    # Redis degraded mode and the fleet's config versions (llmrelay.shared_state.status).
    from ..shared_state.status import shared_status

    shared, refusal = await shared_status(services)
    config = {**config, **shared}
    if refusal:
        reasons.append(refusal)
    if reasons:
        return json_response({"status": "not_ready", "reasons": reasons, **config}, status=503)
    return json_response({"status": "ready", "models": len(services.settings.models),
                          "providers": len(services.providers), **config})


async def metrics(gw: Gateway, req: Request) -> Response:
    m = gw.relay.services.metrics
    body = m.render() if m is not None else b""
    return Response(200, body, [(b"content-type", b"text/plain; version=0.0.4; charset=utf-8")])
