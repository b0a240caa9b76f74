"""Both adapters over the real aiohttp transport against a tiny server on 127.0.0.1: a full stream
works, and a connection dropped mid-stream surfaces as StreamInterruptedError (not a raw socket
error). The streamed bytes are the same shapes as the recorded/documented fixtures elsewhere."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web

from llmrelay.errors import StreamInterruptedError
from llmrelay.providers.base import HTTPProvider, ProviderSettings
from llmrelay.providers.gemini import GeminiProvider
from llmrelay.providers.ollama import OllamaProvider
from llmrelay.streaming import Assembler
from llmrelay.types import ChatRequest, Message

GEMINI_EVENTS: list[dict[str, Any]] = [
    {"candidates": [{"content": {"role": "model", "parts": [{"text": "Hello"}]}}], "responseId": "r"},
    {"candidates": [{"content": {"role": "model", "parts": [{"text": " world"}]}, "finishReason": "STOP"}],
     "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2}},
]
OLLAMA_LINES: list[dict[str, Any]] = [
    {"model": "m", "created_at": "2024-01-01T00:00:00Z", "message": {"role": "assistant", "content": "Hello"},
     "done": False},
    {"model": "m", "created_at": "2024-01-01T00:00:01Z", "message": {"role": "assistant", "content": " world"},
     "done": True, "done_reason": "stop", "prompt_eval_count": 3, "eval_count": 2},
]


def gemini_bytes(events: list[dict[str, Any]]) -> list[bytes]:
    return [b"data: " + json.dumps(e).encode() + b"\r\n\r\n" for e in events]


def ollama_bytes(lines: list[dict[str, Any]]) -> list[bytes]:
    return [json.dumps(x).encode() + b"\n" for x in lines]




@pytest.fixture
async def serve() -> AsyncIterator[Callable[[list[bytes], bool], Any]]:
    runners: list[web.AppRunner] = []

    async def start(pieces: list[bytes], drop: bool) -> str:
        async def handler(request: web.Request) -> web.StreamResponse:
            resp = web.StreamResponse(status=200)
            await resp.prepare(request)
            for piece in pieces:
                await resp.write(piece)
            if drop:
                assert request.transport is not None
                request.transport.close()  # the upstream dies mid-answer
                return resp
            await resp.write_eof()
            return resp

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return f"http://127.0.0.1:{port}"

    yield start
    for runner in runners:
        await runner.cleanup()


CASES = [
    (GeminiProvider, "gemini", gemini_bytes(GEMINI_EVENTS)),
    (OllamaProvider, "ollama", ollama_bytes(OLLAMA_LINES)),
]


@pytest.mark.timeout(20)
@pytest.mark.parametrize(("cls", "kind", "pieces"), CASES, ids=["gemini", "ollama"])
async def test_stream_over_loopback_then_dropped(serve: Any, cls: type[HTTPProvider], kind: str, pieces: list[bytes]) -> None:
    request = ChatRequest(model="m", messages=(Message.user("hi"),))
    base = await serve(pieces, False)
    p = cls(ProviderSettings(name="up", kind=kind, base_url=base, api_key="k", stall_timeout_s=5))
    try:
        asm = Assembler()
        async for chunk in p.stream(request):
            asm.add(chunk)
        result = asm.result()
        assert (result.text, result.finish_reason, result.usage.output_tokens) == ("Hello world", "stop", 2)
        cut = await serve(pieces[:1], True)
        p2 = cls(ProviderSettings(name="up", kind=kind, base_url=cut, api_key="k", stall_timeout_s=5))
        with pytest.raises(StreamInterruptedError) as info:
            _ = [c async for c in p2.stream(request)]
        assert info.value.provider == "up" and info.value.retryable
        await p2.aclose()
    finally:
        await p.aclose()
