"""The OpenAI adapter's failure paths, dialect options and non-chat endpoints, over MockTransport."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from llmrelay.errors import (
    ContextWindowExceededError,
    NotFoundError,
    ProviderResponseError,
    ProviderUnavailableError,
    RateLimitError,
    StreamInterruptedError,
    UpstreamQuotaError,
)
from llmrelay.providers.base import ProviderSettings
from llmrelay.providers.openai import OpenAIProvider
from llmrelay.providers.openai_errors import parse_duration
from llmrelay.providers.presets import PRESETS
from llmrelay.transport import HTTPRequest, MockResponse, MockTransport
from llmrelay.types import ChatRequest, EmbeddingRequest, Message, Reasoning

REQ = ChatRequest(model="gpt-4o-mini", messages=(Message.user("Hi"),))
SSE = {"content-type": "text/event-stream"}


def make(handler: Any, kind: str = "openai", **options: Any) -> tuple[OpenAIProvider, MockTransport]:
    preset = PRESETS[kind]
    settings = ProviderSettings(
        name=f"my-{kind}", kind=kind, base_url=preset.base_url or "https://res.openai.azure.com",
        api_key="sk-test", options={**preset.options, **options},
    )
    transport = MockTransport(handler)
    return OpenAIProvider(settings, transport), transport


def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    body = {"id": "c1", "model": "m", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return b"data: " + orjson.dumps(body) + b"\n\n"


async def test_html_answer_names_provider_and_hints_base_url() -> None:
    page = b"<!DOCTYPE html><html><head><title>Not Found</title></head><body>nginx</body></html>"
    provider, _ = make(lambda r: MockResponse(404, {"content-type": "text/html"}, page))
    with pytest.raises(NotFoundError) as info:
        await provider.complete(REQ)
    assert "my-openai" in str(info.value) and "base_url" in str(info.value) and "Not Found" in str(info.value)


async def test_html_502_is_a_retryable_unavailable_error() -> None:
    provider, _ = make(lambda r: MockResponse(502, {}, b"<html><title>502 Bad Gateway</title></html>"))
    with pytest.raises(ProviderUnavailableError) as info:
        await provider.complete(REQ)
    assert info.value.retryable and info.value.provider == "my-openai"


async def test_html_with_status_200_is_a_bad_response() -> None:
    provider, _ = make(lambda r: MockResponse(200, {"content-type": "text/html"}, b"<html>login</html>"))
    with pytest.raises(ProviderResponseError) as info:
        await provider.complete(REQ)
    assert "HTML" in str(info.value) and info.value.provider == "my-openai"


async def test_malformed_json_answer() -> None:
    provider, _ = make(lambda r: MockResponse(200, {}, b'{"id": "x", "choices": [ '))
    with pytest.raises(ProviderResponseError) as info:
        await provider.complete(REQ)
    assert "malformed JSON" in str(info.value) and info.value.provider == "my-openai"


async def test_empty_stream_is_interrupted() -> None:
    provider, _ = make(lambda r: MockResponse(200, SSE, b""))
    with pytest.raises(StreamInterruptedError) as info:
        [c async for c in provider.stream(REQ)]
    assert "empty" in str(info.value) and info.value.provider == "my-openai"


async def test_dropped_connection_mid_stream() -> None:
    pieces = [chunk({"content": "Hel"}), chunk({"content": "lo"}), StreamInterruptedError("connection reset")]
    provider, _ = make(lambda r: MockResponse(200, SSE, pieces))
    got: list[str] = []
    with pytest.raises(StreamInterruptedError) as info:
        async for c in provider.stream(REQ):
            got.append(c.text)
    assert "".join(got) == "Hello" and info.value.provider == "my-openai"


async def test_stream_cut_before_done_is_interrupted() -> None:
    provider, _ = make(lambda r: MockResponse(200, SSE, [chunk({"content": "partial"})]))
    with pytest.raises(StreamInterruptedError, match="before the answer finished"):
        [c async for c in provider.stream(REQ)]


async def test_stream_with_finish_but_no_done_completes() -> None:
    provider, _ = make(lambda r: MockResponse(200, SSE, [chunk({"content": "ok"}), chunk({}, "length")]))
    chunks = [c async for c in provider.stream(REQ)]
    assert chunks[-1].finish_reason == "length"


async def test_429_with_retry_after() -> None:
    body = orjson.dumps({"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}})
    provider, _ = make(lambda r: MockResponse(429, {"retry-after": "7"}, body))
    with pytest.raises(RateLimitError) as info:
        await provider.complete(REQ)
    assert info.value.retry_after == 7.0 and info.value.retryable and info.value.provider == "my-openai"


async def test_429_with_ratelimit_reset_headers() -> None:
    headers = {"x-ratelimit-remaining-requests": "10", "x-ratelimit-reset-requests": "120ms",
               "x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "6m0s"}
    provider, _ = make(lambda r: MockResponse(429, headers, b'{"error": {"message": "slow down"}}'))
    with pytest.raises(RateLimitError) as info:
        await provider.complete(REQ)
    assert info.value.retry_after == 360.0


async def test_insufficient_quota_is_not_retried() -> None:
    body = orjson.dumps({"error": {"message": "You exceeded your quota", "type": "insufficient_quota",
                                   "code": "insufficient_quota"}})
    provider, _ = make(lambda r: MockResponse(429, {}, body))
    with pytest.raises(UpstreamQuotaError) as info:
        await provider.complete(REQ)
    assert not info.value.retryable and info.value.status == 429


async def test_context_length_exceeded() -> None:
    body = orjson.dumps({"error": {"message": "maximum context length is 8192 tokens", "type": "invalid_request_error",
                                   "param": "messages", "code": "context_length_exceeded"}})
    provider, _ = make(lambda r: MockResponse(400, {}, body))
    with pytest.raises(ContextWindowExceededError) as info:
        await provider.complete(REQ)
    assert info.value.param == "messages"


@pytest.mark.parametrize(("text", "seconds"), [("1s", 1.0), ("6m0s", 360.0), ("20ms", 0.02), ("2m59.56s", 179.56),
                                                ("7.66s", 7.66), ("3", 3.0), ("soon", None)])
def test_parse_duration(text: str, seconds: float | None) -> None:
    got = parse_duration(text)
    assert got == pytest.approx(seconds) if seconds is not None else got is None


def _body(req: HTTPRequest) -> dict[str, Any]:
    return orjson.loads(req.body or b"")


def test_max_tokens_field_follows_the_model() -> None:
    provider, _ = make(None)
    assert "max_tokens" in _body(provider.to_wire(ChatRequest("gpt-4o", REQ.messages, max_tokens=9), stream=False))
    for model in ("o1", "o3-mini", "o4-mini", "gpt-5", "openai/gpt-5-mini"):
        sent = _body(provider.to_wire(ChatRequest(model, REQ.messages, max_tokens=9, temperature=0.2), stream=False))
        assert sent["max_completion_tokens"] == 9 and "max_tokens" not in sent and "temperature" not in sent


def test_stream_asks_for_usage() -> None:
    provider, _ = make(None)
    sent = _body(provider.to_wire(REQ, stream=True))
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}


def test_reasoning_styles() -> None:
    effort = ChatRequest("o3", REQ.messages, reasoning=Reasoning(effort="high"))
    assert _body(make(None)[0].to_wire(effort, stream=False))["reasoning_effort"] == "high"
    router, _ = make(None, "openrouter")
    assert _body(router.to_wire(effort, stream=False))["reasoning"] == {"effort": "high", "enabled": True}
    off = ChatRequest("z", REQ.messages, reasoning=Reasoning(enabled=False))
    assert _body(router.to_wire(off, stream=False))["reasoning"] == {"effort": "none"}


def test_azure_url_and_key_header() -> None:
    provider, _ = make(None, "azure", deployment="prod-4o", api_version="2025-01-01-preview")
    http = provider.to_wire(REQ, stream=False)
    assert http.url == "https://res.openai.azure.com/openai/deployments/prod-4o/chat/completions?api-version=2025-01-01-preview"
    assert http.headers["api-key"] == "sk-test" and "authorization" not in http.headers


def test_tool_result_with_image_adds_a_user_message() -> None:
    from llmrelay.types import ImagePart, TextPart

    msg = Message.tool("call_1", (TextPart("see image"), ImagePart(url="https://x/img.png")))
    sent = _body(make(None)[0].to_wire(ChatRequest("gpt-4o", (*REQ.messages, msg)), stream=False))
    assert sent["messages"][1] == {"role": "tool", "tool_call_id": "call_1", "content": "see image"}
    assert sent["messages"][2] == {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/img.png"}}]}


async def test_list_models_and_embeddings() -> None:
    def handler(req: HTTPRequest) -> MockResponse:
        if req.url.endswith("/models"):
            return MockResponse(200, {}, orjson.dumps({"data": [{"id": "a"}, {"id": "b", "context_length": 8192}]}))
        assert _body(req)["input"] == ["x", "y"]
        data = [{"index": 1, "embedding": [0.5, 0.25]}, {"index": 0, "embedding": [1.0, 2.0]}]
        return MockResponse(200, {}, orjson.dumps({"model": "e", "data": data, "usage": {"prompt_tokens": 4}}))

    provider, transport = make(handler)
    models = await provider.list_models()
    assert [(m.id, m.context_window) for m in models] == [("a", None), ("b", 8192)]
    result = await provider.embed(EmbeddingRequest(model="e", input=("x", "y")))
    assert result.vectors == ((1.0, 2.0), (0.5, 0.25)) and result.usage.input_tokens == 4
    assert transport.requests[0].method == "GET" and (await provider.health()).ok


@pytest.mark.parametrize(("kind", "native"), [("openai", True), ("azure", True), ("vllm", True), ("together", True),
                                              ("groq", False), ("llamacpp", False), ("shimmy", False),
                                              ("openrouter", False), ("deepseek", False)])
async def test_only_servers_that_answer_n_natively_get_n_forwarded(kind: str, native: bool) -> None:
    from llmrelay.providers.choices import provider_complete

    sent: list[dict[str, Any]] = []

    def handler(request: HTTPRequest) -> MockResponse:
        body = orjson.loads(request.body or b"{}")
        sent.append(body)
        choices = [{"index": i, "message": {"role": "assistant", "content": f"a{i}"}, "finish_reason": "stop"}
                   for i in range(body.get("n", 1))]
        return MockResponse(200, {"content-type": "application/json"}, orjson.dumps(
            {"id": "x", "object": "chat.completion", "created": 1, "model": "m", "choices": choices,
             "usage": {"prompt_tokens": 3, "completion_tokens": len(choices), "total_tokens": 3 + len(choices)}}))

    provider, _ = make(handler, kind, deployment="d") if kind == "azure" else make(handler, kind)
    result = await provider_complete(provider, ChatRequest(model="m", messages=(Message("user", "hi"),), n=3))
    # One call answering three choices, or three calls answering one each (merged as choices 0-2).
    texts = [c.text for c in result.all_choices()]
    assert texts == (["a0", "a1", "a2"] if native else ["a0", "a0", "a0"])
    assert [c.index for c in result.all_choices()] == [0, 1, 2] and result.usage.output_tokens == 3
    assert [b.get("n", 1) for b in sent] == ([3] if native else [1, 1, 1])


def test_headers_are_built_once_per_kind_of_request_and_follow_new_settings() -> None:
    from dataclasses import replace

    provider, _ = make(None, referer="https://app.example")
    plain, stream = provider.to_wire(REQ, stream=False), provider.to_wire(REQ, stream=True)
    assert provider.to_wire(REQ, stream=False).headers is plain.headers  # the same read-only mapping
    assert dict(plain.headers) == {"authorization": "Bearer sk-test", "HTTP-Referer": "https://app.example",
                                   "content-type": "application/json"}
    assert dict(stream.headers) == {**plain.headers, "accept": "text/event-stream"}
    get = provider._request("GET", provider.url("models"))
    assert "content-type" not in get.headers and get.headers["authorization"] == "Bearer sk-test"
    with pytest.raises(TypeError):
        plain.headers["x"] = "y"  # type: ignore[index]
    provider.settings = replace(provider.settings, api_key="sk-new", headers={"x-org": "o"})
    again = provider.to_wire(REQ, stream=False).headers
    assert again["authorization"] == "Bearer sk-new" and again["x-org"] == "o"


def test_the_answer_names_the_provider_that_gave_it() -> None:
    provider, _ = make(None)
    body = {"id": "c", "model": "m", "choices": [{"index": 0, "message": {"content": "hi"}, "finish_reason": "stop"}]}
    assert provider.from_wire(body).provider == "my-openai"
    two = {**body, "choices": [{"index": 1, "message": {"content": "b"}}, {"index": 0, "message": {"content": "a"}}]}
    assert [c.text for c in provider.from_wire(two).all_choices()] == ["a", "b"]
