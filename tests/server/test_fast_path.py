"""DESIGN.md's fast path: through the OpenAI edge to an OpenAI-compatible upstream, the bytes sent
upstream are the caller's, with only the model name replaced (and usage asked for in streams);
anything that changes the request (safety redaction, a dialect translation) re-encodes it."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from llmrelay.providers.openai import OpenAIProvider
from llmrelay.relay import Relay
from llmrelay.server.app import Gateway, create_app
from llmrelay.transport import HTTPRequest, MockResponse, MockTransport

from ._asgi_client import call

ANSWER = {
    "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini-2024-07-18",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello there"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11},
}
STREAM = [
    b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini",'
    b'"choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"},"finish_reason":null}]}\n\n',
    b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini",'
    b'"choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":"stop"}]}\n\n',
    b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[],'
    b'"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}}\n\n',
    b"data: [DONE]\n\n",
]
# As a client might write it: spaces, fields in its own order, one the gateway does not model.
BODY = (b'{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hi"}],'
        b' "model": "fast", "temperature": 0.2, "max_tokens": 20, "logit_bias": {"50256": -100},'
        b' "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]}')


def _answer(request: HTTPRequest) -> MockResponse:
    if request.headers.get("accept") == "text/event-stream":
        return MockResponse(200, {"content-type": "text/event-stream"}, STREAM)
    return MockResponse(200, {"content-type": "application/json"}, orjson.dumps(ANSWER))


def _gateway(**extra: Any) -> tuple[Gateway, MockTransport]:
    config: dict[str, Any] = {
        "providers": {"up": {"kind": "openai", "base_url": "http://upstream.invalid/v1", "api_key": "sk-up"}},
        "models": {"fast": [{"provider": "up", "model": "gpt-4o-mini"}]},
        "storage": {"url": "sqlite://:memory:"},
        **extra,
    }
    relay = Relay(config)
    provider = relay.services.providers["up"]
    assert isinstance(provider, OpenAIProvider)
    transport = MockTransport(_answer)
    provider.transport = transport
    return create_app(relay), transport


async def _stream_call(app: Gateway, body: bytes) -> bytes:
    """A streamed call in-process; the client stays connected until the answer ends."""
    scope: dict[str, Any] = {"type": "http", "method": "POST", "path": "/v1/chat/completions",
                             "query_string": b"", "http_version": "1.1",
                             "headers": [(b"content-type", b"application/json")]}
    received, out = False, bytearray()
    never = asyncio.Event()

    async def receive() -> dict[str, Any]:
        nonlocal received
        if not received:
            received = True
            return {"type": "http.request", "body": body, "more_body": False}
        await never.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            assert message["status"] == 200
        else:
            out.extend(message.get("body", b""))

    await app(scope, receive, send)
    return bytes(out)


def _with_model(body: bytes, old: bytes, new: bytes) -> bytes:
    assert body.count(old) == 1
    return body.replace(old, new)


async def test_plain_request_forwards_the_callers_bytes_with_only_the_model_replaced() -> None:
    app, upstream = _gateway()
    status, _, out = await call(app, "POST", "/v1/chat/completions", BODY)
    assert status == 200, out
    assert orjson.loads(out)["choices"][0]["message"]["content"] == "Hello there"
    [sent] = upstream.requests
    assert sent.body == _with_model(BODY, b'"model": "fast"', b'"model": "gpt-4o-mini"')


async def test_stream_forwards_the_callers_bytes_and_asks_for_usage() -> None:
    app, upstream = _gateway()
    body = BODY[:-1] + b', "stream": true}'
    out = await _stream_call(app, body)
    assert b"[DONE]" in out and b"Hel" in out
    [sent] = upstream.requests
    expected = b'{"stream_options":{"include_usage":true},' + _with_model(body, b'"fast"', b'"gpt-4o-mini"')[1:]
    assert sent.body == expected
    assert orjson.loads(sent.body)["stream_options"] == {"include_usage": True}


async def test_stream_that_already_asks_for_usage_is_forwarded_unchanged_but_the_model() -> None:
    app, upstream = _gateway()
    body = b'{"model":"fast","stream":true,"stream_options":{"include_usage":true},' \
           b'"messages":[{"role":"user","content":"hi"}]}'
    out = await _stream_call(app, body)
    assert b'"usage"' in out and b"[DONE]" in out
    assert upstream.requests[0].body == body.replace(b'"fast"', b'"gpt-4o-mini"')


async def test_redacting_safety_policy_disables_the_fast_path() -> None:
    app, upstream = _gateway(safety={"level": "moderate", "actions": {"pii": "redact"}})
    body = b'{"model": "fast", "messages": [{"role": "user", "content": "Mail me at jane.doe@example.com"}]}'
    status, _, out = await call(app, "POST", "/v1/chat/completions", body)
    assert status == 200, out
    sent = upstream.requests[0].body
    assert sent is not None and b"jane.doe@example.com" not in sent
    wire = orjson.loads(sent)
    assert wire["model"] == "gpt-4o-mini"
    assert "jane.doe@example.com" not in wire["messages"][0]["content"]


async def test_clean_prompt_under_the_same_policy_still_takes_the_fast_path() -> None:
    app, upstream = _gateway(safety={"level": "moderate", "actions": {"pii": "redact"}})
    body = b'{"model": "fast", "messages": [{"role": "user", "content": "What is a haiku?"}]}'
    status, _, _ = await call(app, "POST", "/v1/chat/completions", body)
    assert status == 200
    assert upstream.requests[0].body == body.replace(b'"fast"', b'"gpt-4o-mini"')


@pytest.mark.parametrize("body", [
    # the gateway consumes metadata (tags); OpenAI refuses it without store
    b'{"model":"fast","metadata":{"team":"a"},"messages":[{"role":"user","content":"hi"}]}',
    # re-encoding echoes no reasoning to OpenAI
    b'{"model":"fast","messages":[{"role":"user","content":"hi"},'
    b'{"role":"assistant","content":"yo","reasoning_content":"think"},{"role":"user","content":"again"}]}',
    # stream_options without a stream: re-encoding leaves it out
    b'{"model":"fast","stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}',
])
async def test_bodies_that_re_encoding_would_change_are_re_encoded(body: bytes) -> None:
    app, upstream = _gateway()
    status, _, out = await call(app, "POST", "/v1/chat/completions", body)
    assert status == 200, out
    sent = upstream.requests[0].body
    assert sent is not None and sent != body.replace(b'"fast"', b'"gpt-4o-mini"')
    wire = orjson.loads(sent)
    assert wire["model"] == "gpt-4o-mini" and "metadata" not in wire and "stream_options" not in wire
    assert "reasoning_content" not in str(wire["messages"])


async def test_reasoning_model_gets_max_completion_tokens_not_the_callers_max_tokens() -> None:
    app, upstream = _gateway(models={"fast": [{"provider": "up", "model": "o3-mini"}]})
    body = b'{"model":"fast","max_tokens":50,"messages":[{"role":"user","content":"hi"}]}'
    status, _, _ = await call(app, "POST", "/v1/chat/completions", body)
    assert status == 200
    wire = orjson.loads(upstream.requests[0].body or b"")
    assert wire["max_completion_tokens"] == 50 and "max_tokens" not in wire


async def test_anthropic_edge_requests_are_encoded_for_the_openai_upstream() -> None:
    app, upstream = _gateway()
    body = b'{"model":"fast","max_tokens":20,"messages":[{"role":"user","content":"hi"}]}'
    status, _, out = await call(app, "POST", "/v1/messages", body)
    assert status == 200, out
    wire = orjson.loads(upstream.requests[0].body or b"")
    assert wire["model"] == "gpt-4o-mini" and wire["messages"] == [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize("body", [
    # a nested "model" key makes the top-level one ambiguous to a byte search
    b'{"model": "fast", "messages": [{"role": "user", "content": "hi"}], "tools": [{"type": "function",'
    b' "function": {"name": "f", "parameters": {"type": "object", "properties": {"model": {"const": "fast"}}}}}]}',
    # the top-level key spelled with an escape
    b'{"\\u006dodel": "fast", "messages": [{"role": "user", "content": "hi"}], "logprobs": true}',
    # over the size where the bytes are searched
    b'{"model": "fast", "messages": [{"role": "user", "content": "' + b"long " * 5000 + b'"}], "logprobs": true}',
])
async def test_other_bodies_are_the_callers_fields_written_back_with_only_the_model_replaced(body: bytes) -> None:
    app, upstream = _gateway()
    status, _, out = await call(app, "POST", "/v1/chat/completions", body)
    assert status == 200, out
    assert orjson.loads(upstream.requests[0].body or b"") == {**orjson.loads(body), "model": "gpt-4o-mini"}
