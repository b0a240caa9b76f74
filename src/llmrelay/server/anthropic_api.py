"""The Anthropic-compatible edge: ``POST /v1/messages`` (streamed and not) and
``POST /v1/messages/count_tokens``.

Errors are written in Anthropic's shape (``{"type": "error", "error": {"type", "message"}}``) with
the status the official SDK maps to its exception classes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import LLMRelayError, ModelNotFoundError
from . import anthropic_codec as codec
from ._asgi import Request, Response, StreamResponse, json_response
from ._chat import Wire, ctx_headers, estimate_input_tokens, run_chat
from .auth import authenticate, caller_context

if TYPE_CHECKING:
    from .app import Gateway


def _error_body(exc: LLMRelayError) -> dict[str, Any]:
    return exc.to_anthropic()


WIRE = Wire(
    encode_result=codec.encode_result,
    new_encoder=lambda model, request_id, _usage: codec.StreamEncoder(model, request_id),
    error_body=_error_body,
    error_event=codec.error_event,
)


def register(gw: Gateway) -> None:
    gw.route("POST", "/v1/messages", WIRE, lambda req: messages(gw, req), accounted=True)
    gw.route("POST", "/v1/messages/count_tokens", WIRE, lambda req: count_tokens(gw, req))


async def messages(gw: Gateway, req: Request) -> Response | StreamResponse:
    ctx = req.ctx = caller_context(req.headers, "anthropic")
    await authenticate(gw.auth, ctx)
    request = codec.decode_messages(await req.json(gw.max_body_bytes))
    if request.user and ctx.user is None:
        ctx.user = request.user
    return await run_chat(gw.relay, WIRE, request, ctx)


async def count_tokens(gw: Gateway, req: Request) -> Response:
    """The provider's exact count when its API has one, else an estimate (about 4 characters a token)."""
    ctx = req.ctx = caller_context(req.headers, "anthropic")
    who = await authenticate(gw.auth, ctx)
    request = codec.decode_messages(await req.json(gw.max_body_bytes), need_max_tokens=False)
    if who.key is not None and not who.key.allows(request.model):
        raise ModelNotFoundError(f"the model {request.model!r} does not exist or this key cannot use it", param="model")
    for dep, provider in gw.relay.deployments(request.model):
        if provider.capabilities.count_tokens:
            ctx.provider = dep.provider
            exact = await provider.count_tokens(request.with_model(dep.model))
            if exact is not None:
                return json_response({"input_tokens": exact}, headers=ctx_headers(ctx))
    return json_response({"input_tokens": estimate_input_tokens(request)}, headers=ctx_headers(ctx))
