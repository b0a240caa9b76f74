"""Bad input gets the right 4xx in the protocol's own error format; never a 500 or a traceback."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import AsyncIterator, Iterator

import httpx
import orjson
import pytest

from llmrelay.context import RequestContext
from llmrelay.providers.base import Provider
from llmrelay.providers.registry import register
from llmrelay.relay import Relay
from llmrelay.server._asgi import StreamResponse
from llmrelay.server._chat import run_chat
from llmrelay.server.app import create_app
from llmrelay.server.openai_api import WIRE
from llmrelay.types import ChatRequest, ChatResult, Chunk, Message

from ._asgi_client import call
from .conftest import Running, base_config, serve

OPENAI = "/v1/chat/completions"
ANTHROPIC = "/v1/messages"
GOOD_OPENAI = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
GOOD_ANTHROPIC = {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}


class SlowProvider(Provider):
    """Streams for a long time, and records when its stream is closed (i.e. cancelled)."""

    kind = "slowtest"

    def __init__(self, settings, transport=None) -> None:  # type: ignore[no-untyped-def]
        super().__init__(settings)
        self.closed = threading.Event()
        self.sent = 0

    async def complete(self, request: ChatRequest) -> ChatResult:
        return ChatResult(id="s", model=request.model, text="done")

    async def stream(self, request: ChatRequest) -> AsyncIterator[Chunk]:
        try:
            for i in range(2000):
                self.sent = i + 1
                yield Chunk(text=f"tok{i} ", id="s" if i == 0 else None)
                await asyncio.sleep(0.005)
            yield Chunk(finish_reason="stop")
        finally:
            self.closed.set()


register(SlowProvider)


@pytest.fixture(scope="module")
def small(sim_url: str | None) -> Iterator[Running]:
    cfg = base_config(None, server={"max_body_bytes": 4096})
    cfg["providers"]["slow"] = {"kind": "slowtest"}
    cfg["models"]["slow"] = [{"provider": "slow", "model": "s"}]
    with serve(cfg) as running:
        yield running


def openai_error(r: httpx.Response, status: int, code: str | None = None) -> dict:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["message"] and "Traceback" not in r.text
    if code:
        assert err["code"] == code
    return err


def anthropic_error(r: httpx.Response, status: int, kind: str) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["type"] == "error" and body["error"]["type"] == kind and body["error"]["message"]


@pytest.mark.parametrize(("body", "needle"), [
    (b"{not json", "not valid JSON"),
    (b"", "empty"),
    (b"[1, 2]", "expected an object"),
    (b'{"messages": [{"role": "user", "content": "x"}]}', "model: missing"),
    (b'{"model": "m"}', "messages: missing"),
    (b'{"model": 7, "messages": []}', "model: expected a string"),
    (b'{"model": "m", "messages": []}', "messages: must not be empty"),
    (b'{"model": "m", "messages": [{"role": "wizard", "content": "x"}]}', "messages.0.role"),
    (b'{"model": "m", "messages": [{"role": "user", "content": 5}]}', "messages.0.content"),
    (b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"}', "temperature"),
    (b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": 9}', "between"),
    (b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": [{"function": 3}]}', "tools.0.function"),
    (b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}', "stream"),
])
def test_openai_bad_bodies(small: Running, body: bytes, needle: str) -> None:
    r = httpx.post(small.url + OPENAI, content=body, headers={"content-type": "application/json"})
    assert needle in openai_error(r, 400)["message"]


@pytest.mark.parametrize("body", [
    b"{oops",
    b'{"model": "m", "messages": [{"role": "user", "content": "x"}]}',  # no max_tokens
    b'{"model": "m", "max_tokens": "ten", "messages": [{"role": "user", "content": "x"}]}',
    b'{"model": "m", "max_tokens": 5, "messages": [{"role": "system", "content": "x"}]}',
    b'{"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "video"}]}]}',
])
def test_anthropic_bad_bodies(small: Running, body: bytes) -> None:
    r = httpx.post(small.url + ANTHROPIC, content=body, headers={"content-type": "application/json"})
    anthropic_error(r, 400, "invalid_request_error")


def test_unknown_model(small: Running) -> None:
    openai_error(httpx.post(small.url + OPENAI, json={**GOOD_OPENAI, "model": "ghost"}), 404, "model_not_found")
    anthropic_error(httpx.post(small.url + ANTHROPIC, json={**GOOD_ANTHROPIC, "model": "ghost"}), 404, "not_found_error")
    # Streamed too: the failure comes before any byte, so it is still a proper 404.
    openai_error(httpx.post(small.url + OPENAI, json={**GOOD_OPENAI, "model": "ghost", "stream": True}), 404)


def test_wrong_content_type(small: Running) -> None:
    r = httpx.post(small.url + OPENAI, content=orjson.dumps(GOOD_OPENAI), headers={"content-type": "text/plain"})
    openai_error(r, 415, "unsupported_media_type")


def test_body_over_limit_by_content_length_and_while_reading(small: Running) -> None:
    big = {**GOOD_OPENAI, "messages": [{"role": "user", "content": "x" * 10_000}]}
    openai_error(httpx.post(small.url + OPENAI, json=big), 413, "request_too_large")

    def chunks() -> Iterator[bytes]:  # no content-length: chunked transfer, counted while reading
        yield b'{"model": "m", "messages": [{"role": "user", "content": "'
        for _ in range(20):
            yield b"y" * 1000
        yield b'"}]}'

    r = httpx.post(small.url + ANTHROPIC, content=chunks(), headers={"content-type": "application/json"})
    anthropic_error(r, 413, "request_too_large")


def test_unknown_route_and_method(small: Running) -> None:
    openai_error(httpx.get(small.url + "/v1/nothing"), 404)
    openai_error(httpx.get(small.url + OPENAI), 405)


def test_bad_caller_headers(small: Running) -> None:
    r = httpx.post(small.url + OPENAI, json=GOOD_OPENAI, headers={"x-llmrelay-priority": "urgent"})
    assert "x-llmrelay-priority" in openai_error(r, 400)["message"]


def test_client_disconnect_cancels_upstream(small: Running) -> None:
    slow = small.relay.services.providers["slow"]
    assert isinstance(slow, SlowProvider)
    with socket.create_connection(("127.0.0.1", int(small.url.rsplit(":", 1)[1])), timeout=5) as sock:
        body = orjson.dumps({"model": "slow", "stream": True, "messages": [{"role": "user", "content": "go"}]})
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                     + f"content-length: {len(body)}\r\n\r\n".encode() + body)
        assert b"200 OK" in sock.recv(4096)
    # Generous: the stream takes >= 10 s to end by itself, which `sent < 2000` tells apart.
    assert slow.closed.wait(30), "the upstream stream was not closed after the client left"
    assert slow.sent < 2000


async def test_disconnect_keeps_usage_so_far() -> None:
    register(SlowProvider)
    cfg = base_config()
    cfg["providers"]["slow"] = {"kind": "slowtest"}
    cfg["models"]["slow"] = [{"provider": "slow", "model": "s"}]
    relay = Relay(cfg)
    ctx = RequestContext(protocol="openai")
    request = ChatRequest(model="slow", messages=(Message.user("hello " * 40),), stream=True)
    response = await run_chat(relay, WIRE, request, ctx)
    assert isinstance(response, StreamResponse)
    body = response.body
    for _ in range(5):
        await body.__anext__()
    await body.aclose()  # type: ignore[attr-defined]
    assert ctx.status == "cancelled"
    assert ctx.usage is not None and ctx.usage.output_tokens > 0 and ctx.usage.input_tokens > 0
    await relay.aclose()


async def test_in_process_requests_never_500() -> None:
    app = create_app(Relay(base_config()))
    for path in (OPENAI, ANTHROPIC, "/v1/embeddings", "/v1/messages/count_tokens", "/admin/keys"):
        for body in (b"\xff\xfe", b"null", b'"str"', b"{}", b'{"model": null}', b'{"model": "m", "messages": {}}'):
            status, _headers, out = await call(app, "POST", path, body)
            assert 400 <= status < 500, (path, body, status, out)
            assert orjson.loads(out)
