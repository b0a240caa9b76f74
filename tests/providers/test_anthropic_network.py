"""The adapter over a real socket (127.0.0.1): a full stream, a connection cut mid-stream, a stall.

Two or three short requests against an aiohttp server the test starts; nothing leaves the machine.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from llmrelay.errors import StreamInterruptedError
from llmrelay.providers.anthropic import AnthropicProvider
from llmrelay.providers.base import ProviderSettings
from llmrelay.streaming import Assembler, encode_sse_json
from llmrelay.types import ChatRequest, Message

HEAD: list[dict[str, Any]] = [
    {"type": "message_start", "message": {"id": "msg_n", "model": "claude-n", "usage": {"input_tokens": 4, "output_tokens": 1}}},
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello"}},
]
STALL = web.AppKey("stall", asyncio.Event)
TAIL: list[dict[str, Any]] = [
    {"type": "content_block_stop", "index": 0},
    {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 2}},
    {"type": "message_stop"},
]


async def _messages(request: web.Request) -> web.StreamResponse:
    mode = request.headers.get("x-mode", "full")
    assert request.headers["x-api-key"] == "sk-net" and request.headers["anthropic-version"]
    resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
    await resp.prepare(request)
    for event in HEAD:
        await resp.write(encode_sse_json(event, event=event["type"]))
    if mode == "cut":
        assert request.transport is not None
        request.transport.close()  # the connection drops with no end of body
        return resp
    if mode == "stall":
        await request.app[STALL].wait()
        return resp
    for event in TAIL:
        await resp.write(encode_sse_json(event, event=event["type"]))
    await resp.write_eof()
    return resp


@pytest.fixture
async def base_url() -> AsyncIterator[tuple[str, web.Application]]:
    app = web.Application()
    app[STALL] = asyncio.Event()
    app.router.add_post("/v1/messages", _messages)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        app[STALL].set()
        await runner.cleanup()


async def _run(base: str, mode: str, stall_s: float = 5.0) -> Assembler:
    settings = ProviderSettings(
        name="net", kind="anthropic", api_key="sk-net", base_url=base, headers={"x-mode": mode}, stall_timeout_s=stall_s
    )
    provider = AnthropicProvider(settings)
    asm = Assembler()
    try:
        async for chunk in provider.stream(ChatRequest(model="claude-n", messages=(Message.user("hi"),), stream=True)):
            asm.add(chunk)
    finally:
        await provider.aclose()
    return asm


@pytest.mark.timeout(20)
async def test_full_stream_over_http(base_url: tuple[str, web.Application]) -> None:
    result = (await _run(base_url[0], "full")).result()
    assert (result.text, result.finish_reason, result.usage.output_tokens) == ("Hello", "stop", 2)


@pytest.mark.timeout(20)
async def test_connection_cut_mid_stream(base_url: tuple[str, web.Application]) -> None:
    with pytest.raises(StreamInterruptedError) as info:
        await _run(base_url[0], "cut")
    assert info.value.retryable and info.value.provider == "net"


@pytest.mark.timeout(20)
async def test_stalled_stream(base_url: tuple[str, web.Application]) -> None:
    with pytest.raises(StreamInterruptedError):
        await _run(base_url[0], "stall", stall_s=0.3)
