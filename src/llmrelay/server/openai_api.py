"""The OpenAI-compatible edge: ``POST /v1/chat/completions``, ``GET /v1/models``, ``POST /v1/embeddings``.

Errors are written in OpenAI's shape (``{"error": {"message", "type", "param", "code"}}``) with the
status the official SDK maps to its exception classes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from ..errors import LLMRelayError
from ..types import EmbeddingRequest
from . import openai_codec as codec
from . import resume
from ._asgi import JSON_TYPE, Request, Response, StreamResponse, json_response
from ._chat import Wire, ctx_headers, run_chat
from ._validate import bad, lst, model_name, obj, opt_int, opt_str, string
from .auth import authenticate, caller_context
from .decode_memo import DecodeMemo

if TYPE_CHECKING:
    from .app import Gateway


def _error_body(exc: LLMRelayError) -> dict[str, Any]:
    return exc.to_openai()


WIRE = Wire(
    encode_result=codec.encode_result,
    new_encoder=codec.StreamEncoder,
    error_body=_error_body,
    error_event=codec.error_event,
    encode_hit=codec.encode_hit,
)


def register(gw: Gateway) -> None:
    memo = DecodeMemo()  # one per gateway: both paths decode alike
    gw.route("POST", "/v1/chat/completions", WIRE, lambda req: chat_completions(gw, req, memo), accounted=True)
    gw.route("POST", "/chat/completions", WIRE, lambda req: chat_completions(gw, req, memo), accounted=True)
    gw.route("GET", "/v1/models", WIRE, lambda req: models(gw, req))
    gw.route("POST", "/v1/embeddings", WIRE, lambda req: embeddings(gw, req), accounted=True)
    resume.register(gw)


async def chat_completions(gw: Gateway, req: Request, memo: DecodeMemo) -> Response | StreamResponse:
    ctx = req.ctx = caller_context(req.headers, "openai")
    await authenticate(gw.auth, ctx)
    # The request keeps the caller's bytes (RawBody) so an OpenAI-compatible upstream can be sent
    # them (providers/openai_passthrough); a body seen before is decoded once (decode_memo).
    request, usage = memo.decode(await req.json_bytes(gw.max_body_bytes))
    if request.user and ctx.user is None:
        ctx.user = request.user
    response = await run_chat(gw.relay, WIRE, request, ctx, usage)
    return resume.record(gw, ctx, response) if isinstance(response, StreamResponse) else response


async def models(gw: Gateway, req: Request) -> Response:
    ctx = req.ctx = caller_context(req.headers, "openai")
    who = await authenticate(gw.auth, ctx)
    created = int(gw.started_at)
    names = [m.id for m in await gw.relay.list_models()]
    if who.key is not None and who.key.models:
        names = [n for n in names if who.key.allows(n)]
    data = [{"id": n, "object": "model", "created": created, "owned_by": "llmrelay"} for n in names]
    return json_response({"object": "list", "data": data}, headers=ctx_headers(ctx))


async def embeddings(gw: Gateway, req: Request) -> Response:
    ctx = req.ctx = caller_context(req.headers, "openai")
    who = await authenticate(gw.auth, ctx)
    body = obj(await req.json(gw.max_body_bytes), "body")
    request = _embedding_request(body)
    if who.key is not None and not who.key.allows(request.model):
        from ..errors import ModelNotFoundError

        raise ModelNotFoundError(f"the model {request.model!r} does not exist or this key cannot use it", param="model")
    fmt = body.get("encoding_format", "float")
    if fmt not in ("float", "base64"):
        bad("encoding_format", "must be float or base64")
    result = await gw.relay.embed(request, ctx)
    # Embeddings skip the chat pipeline; their usage and cost still go to the ledger.
    await gw.relay.account(ctx, request.model)
    data = [{"object": "embedding", "index": i, "embedding": _vector(v, fmt)} for i, v in enumerate(result.vectors)]
    out = {"object": "list", "data": data, "model": request.model,
           "usage": {"prompt_tokens": result.usage.input_tokens, "total_tokens": result.usage.input_tokens,
                     "cost": round(ctx.cost_usd, 10)}}
    return Response(200, orjson.dumps(out), [JSON_TYPE, *ctx_headers(ctx)])


def _embedding_request(body: Any) -> EmbeddingRequest:
    model = model_name(body)
    if "input" not in body:
        bad("input", "missing required field")
    raw = body["input"]
    if isinstance(raw, str):
        texts: tuple[str, ...] = (raw,)
    else:
        texts = tuple(string(t, f"input.{i}") for i, t in enumerate(lst(raw, "input", nonempty=True)))
    return EmbeddingRequest(model=model, input=texts, dimensions=opt_int(body, "dimensions"), user=opt_str(body, "user"))


def _vector(v: tuple[float, ...], fmt: str) -> Any:
    if fmt == "float":
        return list(v)
    import base64
    import struct

    return base64.b64encode(struct.pack(f"<{len(v)}f", *v)).decode()
