"""The app's lifecycle and ops endpoints, and the pure edge codecs."""

from __future__ import annotations

from typing import Any

import orjson

from llmrelay.relay import Relay
from llmrelay.server import anthropic_codec, openai_codec
from llmrelay.server.app import create_app
from llmrelay.server.openapi import spec
from llmrelay.streaming import Assembler, SSEDecoder
from llmrelay.types import ChatResult, Chunk, ImagePart, ToolCall, ToolCallDelta, Usage

from ._asgi_client import call
from .conftest import base_config


async def _lifespan(app: Any, *messages: str) -> list[str]:
    inbox = [{"type": m} for m in messages]
    sent: list[str] = []

    async def receive() -> dict[str, Any]:
        return inbox.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message["type"])

    await app({"type": "lifespan"}, receive, send)
    return sent


async def test_ready_follows_lifespan_and_shutdown_drains() -> None:
    relay = Relay(base_config())
    app = create_app(relay)
    closed: list[bool] = []

    async def on_close() -> None:
        closed.append(True)

    relay.services.on_close.append(on_close)
    status, _, body = await call(app, "GET", "/health/ready")
    assert status == 503 and "not started" in orjson.loads(body)["reasons"][0]
    assert app.relay is relay
    # Startup then shutdown in one lifespan: the relay's background work is closed on the way out.
    assert await _lifespan(app, "lifespan.startup", "lifespan.shutdown") == [
        "lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert closed == [True]
    status, _, body = await call(app, "GET", "/health/ready")
    assert status == 503 and orjson.loads(body)["reasons"] == ["shutting down"]


async def test_ready_when_started() -> None:
    app = create_app(Relay(base_config()))
    app.started = True
    status, _, body = await call(app, "GET", "/health/ready")
    assert status == 200 and orjson.loads(body)["status"] == "ready"


def test_openai_decode_maps_fields() -> None:
    req = openai_codec.decode_chat({
        "model": "m", "max_completion_tokens": 50, "max_tokens": 10, "stop": "END", "seed": 1, "logit_bias": {"1": 2},
        "reasoning_effort": "low", "messages": [
            {"role": "developer", "content": [{"type": "text", "text": "be terse"}]},
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]})
    assert req.messages[0].role == "system" and req.messages[0].text() == "be terse"
    assert req.max_tokens == 50 and req.stop == ("END",) and req.extra == {"logit_bias": {"1": 2}}
    assert req.reasoning is not None and req.reasoning.effort == "low" and req.deterministic
    parts = req.messages[1].content
    assert isinstance(parts, tuple) and parts[0] == ImagePart(url="https://x/y.png")


def test_openai_stream_encoding_assembles_to_the_same_answer() -> None:
    chunks = [Chunk(text="Hel", id="x"), Chunk(text="lo", reasoning="hmm"),
              Chunk(tool_calls=(ToolCallDelta(0, id="c1", name="f", arguments='{"a":'),)),
              Chunk(tool_calls=(ToolCallDelta(0, arguments="1}"),)),
              Chunk(finish_reason="tool_calls", usage=Usage(7, 3, cache_read_tokens=2, reasoning_tokens=1))]
    enc = openai_codec.StreamEncoder("m", "req_abc", include_usage=True)
    raw = b"".join(enc.chunk(c) for c in chunks) + enc.end(0.5)
    dec, asm, usage = SSEDecoder(), Assembler(), None
    for line in raw.split(b"\n"):
        for ev in dec.feed(line):
            if ev.data == "[DONE]":
                continue
            data = ev.json()
            usage = data.get("usage") or usage
            for choice in data["choices"]:
                d = choice["delta"]
                calls = tuple(ToolCallDelta(t["index"], t.get("id"), t["function"].get("name"), t["function"]["arguments"])
                              for t in d.get("tool_calls", []))
                asm.add(Chunk(text=d.get("content") or "", reasoning=d.get("reasoning_content") or "", tool_calls=calls,
                              finish_reason=choice["finish_reason"]))
    result = asm.result()
    assert (result.text, result.reasoning, result.finish_reason) == ("Hello", "hmm", "tool_calls")
    assert result.tool_calls == (ToolCall("c1", "f", '{"a":1}'),)
    assert usage == {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10, "cost": 0.5,
                     "prompt_tokens_details": {"cached_tokens": 2}, "completion_tokens_details": {"reasoning_tokens": 1}}


def test_anthropic_decode_and_usage_semantics() -> None:
    req = anthropic_codec.decode_messages({
        "model": "m", "max_tokens": 5, "system": [{"type": "text", "text": "sys", "cache_control": {"type": "ephemeral"}}],
        "thinking": {"type": "enabled", "budget_tokens": 1024}, "metadata": {"user_id": "u1"},
        "tool_choice": {"type": "tool", "name": "f", "disable_parallel_tool_use": True},
        "messages": [{"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "t1", "content": "boom", "is_error": True},
            {"type": "image", "source": {"type": "url", "url": "https://x/i.png"}}]}]})
    system, tool, user = req.messages
    assert system.role == "system" and tool.is_error and tool.tool_call_id == "t1"
    assert user.content == (ImagePart(url="https://x/i.png"),)
    assert req.reasoning is not None and req.reasoning.budget_tokens == 1024
    assert (req.user, req.tool_choice, req.parallel_tool_calls) == ("u1", "f", False)
    body = orjson.loads(anthropic_codec.encode_result(
        ChatResult(id="r", model="x", text="ok", finish_reason="length",
                   usage=Usage(input_tokens=100, output_tokens=5, cache_read_tokens=60, cache_write_tokens=30)),
        "m", "req_1", 0.25))
    assert body["stop_reason"] == "max_tokens"
    assert body["usage"] == {"input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": 60,
                             "cache_creation_input_tokens": 30, "cost": 0.25}


def test_openapi_lists_public_endpoints() -> None:
    paths = spec()["paths"]
    for p in ("/v1/chat/completions", "/v1/embeddings", "/v1/models", "/v1/messages", "/v1/messages/count_tokens",
              "/admin/keys", "/admin/keys/{id}", "/health/live", "/health/ready", "/metrics"):
        assert p in paths


async def test_cors_for_allowed_origins_only() -> None:
    app = create_app(Relay(base_config(server={"cors_origins": ["https://ui.example"]})))
    status, headers, _ = await call(app, "OPTIONS", "/v1/chat/completions", headers={"origin": "https://ui.example"})
    assert status == 204 and headers["access-control-allow-origin"] == "https://ui.example"
    _, headers, _ = await call(app, "GET", "/v1/models", headers={"origin": "https://ui.example"})
    assert "x-llmrelay-request-id" in headers["access-control-expose-headers"]
    _, headers, _ = await call(app, "GET", "/v1/models", headers={"origin": "https://evil.example"})
    assert "access-control-allow-origin" not in headers
