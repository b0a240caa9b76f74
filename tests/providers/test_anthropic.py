"""The Anthropic adapter's mapping rules and failure handling, one behaviour per test.

Recorded real exchanges are covered by test_anthropic_wire.py; these tests pin what the recordings
do not show (merging, prefill, budgets, fallbacks) and the ways an upstream can fail.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

import orjson
import pytest

from llmrelay.errors import (
    AuthenticationError,
    ContextWindowExceededError,
    InvalidRequestError,
    ModelNotFoundError,
    ProviderResponseError,
    ProviderUnavailableError,
    RateLimitError,
    StreamInterruptedError,
)
from llmrelay.providers.anthropic import AnthropicProvider
from llmrelay.providers.base import ProviderSettings
from llmrelay.providers.registry import provider_class
from llmrelay.streaming import Assembler, encode_sse_json
from llmrelay.transport import HTTPRequest, MockResponse, MockTransport
from llmrelay.types import (
    ChatRequest,
    Chunk,
    DocumentPart,
    ImagePart,
    Message,
    Reasoning,
    TextPart,
    Tool,
    ToolCall,
)

Handler = Callable[[HTTPRequest], MockResponse]


def make(handler: Handler | None = None, now: float = 1_000.0, **options: Any) -> tuple[AnthropicProvider, MockTransport]:
    transport = MockTransport(handler or (lambda r: MockResponse(500)))
    settings = ProviderSettings(
        name="claude", kind="anthropic", api_key="sk-ant", base_url="http://127.0.0.1:9/v1", options=options
    )
    return AnthropicProvider(settings, transport, now=lambda: now), transport


def body_of(request: ChatRequest, stream: bool = False, **options: Any) -> dict[str, Any]:
    provider, _ = make(**options)
    http = provider.to_wire(request, stream=stream)
    assert http.body is not None
    parsed: dict[str, Any] = orjson.loads(http.body)
    return parsed


def req(*messages: Message, model: str = "claude-sonnet-4-5", **kw: Any) -> ChatRequest:
    return ChatRequest(model=model, messages=messages, **kw)


def sse(*events: dict[str, Any]) -> list[bytes]:
    return [encode_sse_json(e, event=e["type"]) for e in events]


def start(usage: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"type": "message_start", "message": {"id": "msg_1", "model": "claude-x", "usage": usage or {"input_tokens": 5, "output_tokens": 1}}}


STOP = {"type": "message_stop"}


async def collect(provider: AnthropicProvider, request: ChatRequest, into: list[Chunk] | None = None) -> Assembler:
    asm = Assembler()
    async for chunk in provider.stream(request):
        asm.add(chunk)
        if into is not None:
            into.append(chunk)
    return asm


def replying(status: int, body: bytes | Iterable[bytes | BaseException], headers: dict[str, str] | None = None) -> Handler:
    return lambda r: MockResponse(status, headers or {"content-type": "application/json"}, body)


# ----------------------------------------------------------------------------------- the request


def test_registry_resolves_the_kind() -> None:
    assert provider_class("anthropic") is AnthropicProvider
    assert AnthropicProvider.capabilities.prefill and AnthropicProvider.capabilities.count_tokens


def test_url_and_headers_follow_the_sdk() -> None:
    provider, _ = make(beta=["a-2025", "b-2026"], anthropic_version="2023-06-01")
    http = provider.to_wire(req(Message.user("hi")), stream=True)
    assert http.url == "http://127.0.0.1:9/v1/messages"  # base_url's /v1 is not doubled
    assert http.headers["x-api-key"] == "sk-ant" and "authorization" not in http.headers
    assert http.headers["anthropic-beta"] == "a-2025,b-2026"
    assert http.headers["accept"] == "text/event-stream"


def test_system_messages_are_pulled_up_and_joined() -> None:
    body = body_of(req(Message.system("A"), Message.user("q"), Message.system("B")))
    assert body["system"] == "A\n\nB"
    assert [m["role"] for m in body["messages"]] == ["user"]


def test_system_with_cache_control_is_sent_as_blocks() -> None:
    cached = Message(role="system", content=(TextPart("long", cache_control={"type": "ephemeral"}),))
    body = body_of(req(cached, Message.user("q")))
    assert body["system"] == [{"type": "text", "text": "long", "cache_control": {"type": "ephemeral"}}]


def test_tool_round_trip_merges_turns() -> None:
    body = body_of(
        req(
            Message.user("weather?"),
            Message.user("in Paris"),
            Message.assistant("checking", [ToolCall("t1", "get", '{"city": "Paris"}'), ToolCall("t2", "get", "")]),
            Message.tool("t1", "18C"),
            Message.tool("t2", "timeout", is_error=True),
            Message.user("thanks"),
        )
    )
    user1, assistant, user2 = body["messages"]
    assert [b["text"] for b in user1["content"]] == ["weather?", "in Paris"]
    assert assistant["content"][1:] == [
        {"type": "tool_use", "id": "t1", "name": "get", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "t2", "name": "get", "input": {}},
    ]
    assert user2["content"] == [
        {"type": "tool_result", "tool_use_id": "t1", "content": "18C", "is_error": False},
        {"type": "tool_result", "tool_use_id": "t2", "content": "timeout", "is_error": True},
        {"type": "text", "text": "thanks"},
    ]


def test_invalid_tool_arguments_in_history_are_refused() -> None:
    with pytest.raises(InvalidRequestError, match="not valid JSON"):
        body_of(req(Message.user("q"), Message.assistant(None, [ToolCall("t", "f", "{oops")]), Message.tool("t", "x")))


def test_last_assistant_message_is_a_prefill_without_trailing_space() -> None:
    body = body_of(req(Message.user("Write JSON"), Message.assistant('{"name": ')))
    assert body["messages"][-1] == {"role": "assistant", "content": [{"type": "text", "text": '{"name":'}]}


def test_images_and_documents() -> None:
    parts = (
        ImagePart(url="data:image/jpeg;base64,QUJD"),
        ImagePart(url="https://x/y.png"),
        DocumentPart(data="SGVsbG8=", media_type="text/plain", name="hello.txt"),
        DocumentPart(data="JVBERi0=", media_type="application/pdf"),
    )
    content = body_of(req(Message.user(parts)))["messages"][0]["content"]
    assert content[0]["source"] == {"type": "base64", "media_type": "image/jpeg", "data": "QUJD"}
    assert content[1]["source"] == {"type": "url", "url": "https://x/y.png"}
    assert content[2] == {"type": "document", "title": "hello.txt", "source": {"type": "text", "media_type": "text/plain", "data": "Hello"}}
    assert content[3]["source"]["type"] == "base64"


@pytest.mark.parametrize(
    ("choice", "parallel", "wire"),
    [
        ("auto", None, {"type": "auto"}),
        ("required", None, {"type": "any"}),
        ("lookup", False, {"type": "tool", "name": "lookup", "disable_parallel_tool_use": True}),
        ("none", None, {"type": "none"}),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
    ],
)
def test_tool_choice(choice: str | None, parallel: bool | None, wire: dict[str, Any]) -> None:
    tool = Tool("lookup", "Find", {"type": "object", "properties": {"q": {"type": "string"}}})
    body = body_of(req(Message.user("q"), tools=(tool,), tool_choice=choice, parallel_tool_calls=parallel))
    assert body["tool_choice"] == wire
    assert body["tools"] == [{"name": "lookup", "description": "Find", "input_schema": dict(tool.parameters)}]


def test_sampling_stop_and_user() -> None:
    body = body_of(req(Message.user("q"), temperature=0.3, top_p=0.9, top_k=5, stop=("END",), user="u-42", max_tokens=100))
    assert (body["temperature"], body["top_p"], body["top_k"], body["max_tokens"]) == (0.3, 0.9, 5, 100)
    assert body["stop_sequences"] == ["END"] and body["metadata"] == {"user_id": "u-42"}


def test_max_tokens_defaults_from_option_and_model_cap() -> None:
    assert body_of(req(Message.user("q")))["max_tokens"] == 4096
    assert body_of(req(Message.user("q")), default_max_tokens=10000)["max_tokens"] == 10000
    # claude-3-haiku cannot write more than 4096 tokens.
    assert body_of(req(Message.user("q"), model="claude-3-haiku-20240307"), default_max_tokens=10000)["max_tokens"] == 4096


def test_thinking_budget_is_at_least_the_minimum_and_below_max_tokens() -> None:
    body = body_of(req(Message.user("q"), reasoning=Reasoning(budget_tokens=500), max_tokens=300, temperature=0.2, top_k=3))
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    assert body["max_tokens"] > 1024
    # The API rejects temperature and top_k with thinking: they are dropped.
    assert "temperature" not in body and "top_k" not in body


@pytest.mark.parametrize(("effort", "budget"), [("minimal", 1024), ("low", 2048), ("medium", 8192), ("high", 16384)])
def test_effort_becomes_a_budget_on_older_models(effort: str, budget: int) -> None:
    body = body_of(req(Message.user("q"), model="claude-sonnet-4-0", reasoning=Reasoning(effort=effort)))  # type: ignore[arg-type]
    assert body["thinking"] == {"type": "enabled", "budget_tokens": budget}
    assert body["max_tokens"] > budget and "output_config" not in body


def test_effort_is_adaptive_on_newer_models() -> None:
    body = body_of(req(Message.user("q"), model="claude-opus-4-6", reasoning=Reasoning(effort="minimal")))
    assert body["thinking"] == {"type": "adaptive"} and body["output_config"] == {"effort": "low"}
    body = body_of(req(Message.user("q"), model="claude-opus-4-7", reasoning=Reasoning(effort="high")))
    assert body["thinking"] == {"type": "adaptive", "display": "summarized"}
    body = body_of(req(Message.user("q"), model="claude-opus-4-6", reasoning=Reasoning(effort="low", enabled=False)))
    assert "thinking" not in body and body["output_config"] == {"effort": "low"}


def test_signed_thinking_goes_back_first_and_unsigned_is_dropped() -> None:
    signed = Message(role="assistant", content="4", reasoning="2+2", reasoning_signature="sig")
    other = Message(role="assistant", content="5", reasoning="from elsewhere")
    body = body_of(req(Message.user("q"), signed, Message.user("again"), other, Message.user("more")))
    assert body["messages"][1]["content"][0] == {"type": "thinking", "thinking": "2+2", "signature": "sig"}
    assert body["messages"][3]["content"] == [{"type": "text", "text": "5"}]


def test_redacted_and_multiple_thinking_blocks_round_trip() -> None:
    provider, _ = make()
    blocks = [
        {"type": "thinking", "thinking": "a", "signature": "s1"},
        {"type": "redacted_thinking", "data": "opaque"},
        {"type": "text", "text": "ok"},
    ]
    result = provider.from_wire({"id": "m", "model": "c", "content": blocks, "stop_reason": "end_turn", "usage": {}})
    history = Message(role="assistant", content=result.text, reasoning=result.reasoning, reasoning_signature=result.reasoning_signature)
    body = body_of(req(Message.user("q"), history, Message.user("next")))
    assert body["messages"][1]["content"] == blocks


SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
JSON_FORMAT = {"type": "json_schema", "json_schema": {"name": "c", "schema": SCHEMA}}


def test_json_schema_is_native_on_models_that_support_it() -> None:
    body = body_of(req(Message.user("q"), response_format=JSON_FORMAT))
    assert body["output_config"] == {"format": {"type": "json_schema", "schema": SCHEMA}}
    assert "tools" not in body


async def test_json_schema_uses_a_forced_tool_on_older_models() -> None:
    answer = {"id": "m", "model": "c", "stop_reason": "tool_use", "usage": {"input_tokens": 1, "output_tokens": 1},
              "content": [{"type": "tool_use", "id": "t", "name": "llmrelay_json_response", "input": {"city": "Paris"}}]}
    provider, transport = make(replying(200, orjson.dumps(answer)))
    result = await provider.complete(req(Message.user("q"), model="claude-3-5-haiku-latest", response_format=JSON_FORMAT))
    sent = orjson.loads(transport.requests[0].body or b"")
    assert sent["tool_choice"] == {"type": "tool", "name": "llmrelay_json_response"}
    assert sent["tools"][0]["input_schema"] == SCHEMA
    assert json.loads(result.text) == {"city": "Paris"}
    assert result.finish_reason == "stop" and result.tool_calls == ()


# ------------------------------------------------------------------------------------ the stream


async def test_stream_tool_calls_are_indexed_among_tool_calls() -> None:
    events = sse(
        start(),
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Let me look."}},
        {"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "a", "name": "f", "input": {}}},
        {"type": "content_block_start", "index": 2, "content_block": {"type": "server_tool_use", "id": "s", "name": "web_search", "input": {}}},
        {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": '{"query": "x"}'}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": '{"k": '}},
        {"type": "content_block_start", "index": 3, "content_block": {"type": "tool_use", "id": "b", "name": "g", "input": {}}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "1}"}},
        {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 9}},
        STOP,
    )
    provider, _ = make(replying(200, events, {"content-type": "text/event-stream"}))
    chunks: list[Chunk] = []
    result = (await collect(provider, req(Message.user("q")), chunks)).result()
    assert {d.index for c in chunks for d in c.tool_calls} == {0, 1}
    assert [(c.id, c.name, c.arguments) for c in result.tool_calls] == [("a", "f", '{"k": 1}'), ("b", "g", "{}")]
    assert result.text == "Let me look." and result.finish_reason == "tool_calls"


async def test_stream_thinking_signature_and_usage() -> None:
    usage = {"input_tokens": 3, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 50,
             "cache_creation": {"ephemeral_1h_input_tokens": 20, "ephemeral_5m_input_tokens": 30}, "output_tokens": 1}
    events = sse(
        start(usage),
        {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": "", "signature": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "hmm"}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "SIG"}},
        {"type": "ping"},
        {"type": "message_delta", "delta": {"stop_reason": "max_tokens"}, "usage": {"output_tokens": 40, "output_tokens_details": {"thinking_tokens": 30}}},
        STOP,
    )
    provider, _ = make(replying(200, events))
    result = (await collect(provider, req(Message.user("q")))).result()
    assert (result.reasoning, result.reasoning_signature, result.finish_reason) == ("hmm", "SIG", "length")
    u = result.usage
    assert (u.input_tokens, u.cache_read_tokens, u.cache_write_tokens, u.cache_write_1h_tokens) == (153, 100, 50, 20)
    assert (u.output_tokens, u.reasoning_tokens) == (40, 30)


async def test_refusal_is_a_content_filter() -> None:
    events = sse(start(), {"type": "message_delta", "delta": {"stop_reason": "refusal"}, "usage": {"output_tokens": 2}}, STOP)
    provider, _ = make(replying(200, events))
    assert (await collect(provider, req(Message.user("q")))).result().finish_reason == "content_filter"


async def test_empty_stream_is_interrupted() -> None:
    provider, _ = make(replying(200, b""))
    with pytest.raises(StreamInterruptedError, match="empty stream"):
        await collect(provider, req(Message.user("q")))


async def test_stream_without_message_stop_is_interrupted_after_its_chunks() -> None:
    events = sse(start(), {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": "par"}})
    provider, _ = make(replying(200, events))
    chunks: list[Chunk] = []
    with pytest.raises(StreamInterruptedError, match="mid-answer"):
        await collect(provider, req(Message.user("q")), chunks)
    assert "".join(c.text for c in chunks) == "par"


async def test_dropped_connection_mid_stream() -> None:
    events: list[bytes | BaseException] = [*sse(start()), StreamInterruptedError("the upstream closed the connection mid-answer")]
    provider, _ = make(replying(200, events))
    with pytest.raises(StreamInterruptedError) as info:
        await collect(provider, req(Message.user("q")))
    assert info.value.provider == "claude" and info.value.retryable


async def test_error_event_mid_stream_is_mapped() -> None:
    events = sse(start(), {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    provider, _ = make(replying(200, events))
    with pytest.raises(ProviderUnavailableError, match="Overloaded") as info:
        await collect(provider, req(Message.user("q")))
    assert info.value.retryable and info.value.provider == "claude"


async def test_malformed_stream_event() -> None:
    provider, _ = make(replying(200, [b"event: message_start\ndata: {not json\n\n"]))
    with pytest.raises(StreamInterruptedError, match="malformed"):
        await collect(provider, req(Message.user("q")))


# ------------------------------------------------------------------------------------ the errors


def error_body(kind: str, message: str) -> bytes:
    return orjson.dumps({"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_9"})


async def test_overloaded_529_is_retryable() -> None:
    provider, _ = make(replying(529, error_body("overloaded_error", "Overloaded")))
    with pytest.raises(ProviderUnavailableError) as info:
        await provider.complete(req(Message.user("q")))
    err = info.value
    assert err.retryable and err.upstream_status == 529 and err.headers()["x-should-retry"] == "true"
    assert "req_9" in str(err)


@pytest.mark.parametrize(
    ("status", "kind", "message", "cls"),
    [
        (400, "invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum", ContextWindowExceededError),
        (400, "invalid_request_error", "max_tokens: must be positive", InvalidRequestError),
        (401, "authentication_error", "invalid x-api-key", AuthenticationError),
        (404, "not_found_error", "model: claude-nope", ModelNotFoundError),
    ],
)
async def test_error_bodies_map_to_classes(status: int, kind: str, message: str, cls: type[Exception]) -> None:
    provider, _ = make(replying(status, error_body(kind, message)))
    with pytest.raises(cls, match=message.split(":")[0]) as info:
        await provider.complete(req(Message.user("q")))
    assert type(info.value) is cls


async def test_rate_limit_retry_after_header() -> None:
    provider, _ = make(replying(429, error_body("rate_limit_error", "slow"), {"retry-after": "7"}))
    with pytest.raises(RateLimitError) as info:
        await provider.complete(req(Message.user("q")))
    assert info.value.retry_after == 7.0 and info.value.retryable


async def test_rate_limit_reset_headers_use_the_injected_clock() -> None:
    now = 1_700_000_000.0
    headers = {
        "anthropic-ratelimit-requests-remaining": "10",
        "anthropic-ratelimit-requests-reset": "2023-11-14T22:13:50Z",  # now + 30
        "anthropic-ratelimit-tokens-remaining": "0",
        "anthropic-ratelimit-tokens-reset": "2023-11-14T22:13:32Z",  # now + 12
    }
    provider, _ = make(replying(429, error_body("rate_limit_error", "tokens"), headers), now=now)
    with pytest.raises(RateLimitError) as info:
        await provider.complete(req(Message.user("q")))
    assert info.value.retry_after == pytest.approx(12.0)


async def test_html_error_page() -> None:
    html = b"<!DOCTYPE html><html><body>502 Bad Gateway</body></html>"
    provider, _ = make(replying(502, html, {"content-type": "text/html"}))
    with pytest.raises(ProviderUnavailableError, match="HTML") as info:
        await provider.complete(req(Message.user("q")))
    assert info.value.retryable


async def test_malformed_json_answer() -> None:
    provider, _ = make(replying(200, b'{"id": "msg_1", "content": ['))
    with pytest.raises(ProviderResponseError, match="malformed JSON"):
        await provider.complete(req(Message.user("q")))


async def test_error_body_with_status_200() -> None:
    provider, _ = make(replying(200, error_body("api_error", "Internal server error")))
    with pytest.raises(Exception, match="Internal server error") as info:
        await provider.complete(req(Message.user("q")))
    assert getattr(info.value, "retryable", False)


# ---------------------------------------------------------------------------- other endpoints


async def test_count_tokens_sends_only_what_the_endpoint_accepts() -> None:
    provider, transport = make(replying(200, b'{"input_tokens": 42}'))
    tool = Tool("f", "d")
    n = await provider.count_tokens(req(Message.system("s"), Message.user("q"), tools=(tool,), max_tokens=10, temperature=0.1))
    assert n == 42
    sent = transport.requests[0]
    assert sent.url.endswith("/v1/messages/count_tokens")
    assert set(orjson.loads(sent.body or b"")) == {"model", "messages", "system", "tools"}


async def test_list_models_follows_pages_and_health() -> None:
    pages = {
        None: {"data": [{"id": "claude-opus-4-6", "type": "model"}], "has_more": True, "last_id": "claude-opus-4-6"},
        "claude-opus-4-6": {"data": [{"id": "claude-3-haiku-20240307", "type": "model"}], "has_more": False, "last_id": "claude-3-haiku-20240307"},
    }

    def handler(r: HTTPRequest) -> MockResponse:
        after = r.url.split("after_id=")[1] if "after_id=" in r.url else None
        return MockResponse(200, {}, orjson.dumps(pages[after]))

    provider, transport = make(handler)
    models = await provider.list_models()
    assert [(m.id, m.max_output_tokens) for m in models] == [("claude-opus-4-6", 128000), ("claude-3-haiku-20240307", 4096)]
    assert all(r.method == "GET" and r.headers["x-api-key"] == "sk-ant" for r in transport.requests)
    assert (await provider.health()).ok


async def test_health_reports_a_bad_key() -> None:
    provider, _ = make(replying(401, error_body("authentication_error", "invalid x-api-key")))
    status = await provider.health()
    assert not status.ok and "api_key" in status.detail
