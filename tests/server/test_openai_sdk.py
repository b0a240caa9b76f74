"""The official openai SDK (and LangChain's ChatOpenAI) against a real running gateway."""

from __future__ import annotations

import base64
import json

import openai
import pytest

from llmrelay.errors import (
    BudgetExceededError,
    ContentPolicyError,
    ProviderUnavailableError,
    RateLimitError,
)
from llmrelay.types import ChatResult, Chunk, ToolCall, ToolCallDelta, Usage

from .conftest import Running, sim_groups

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 16).decode()


def client(gw: Running, key: str = "anything") -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=0, timeout=10)


def test_chat_non_streamed_has_cost_and_headers(gateway: Running) -> None:
    raw = client(gateway).chat.completions.with_raw_response.create(
        model="m", messages=[{"role": "user", "content": "hello there"}], user="alice")
    answer = raw.parse()
    assert answer.choices[0].message.content == "You said: hello there"
    assert answer.choices[0].finish_reason == "stop"
    assert answer.usage is not None and answer.usage.prompt_tokens == 2
    assert isinstance(answer.usage.model_extra.get("cost"), float)
    assert raw.headers["x-llmrelay-provider"] == "fake"
    assert raw.headers["x-llmrelay-request-id"].startswith("req_")
    assert float(raw.headers["x-llmrelay-cost-usd"]) >= 0
    assert raw.headers["x-llmrelay-cache"] in ("hit", "miss", "off")
    assert gateway.fake.calls[-1].user == "alice"


def test_stream_with_usage_chunk(gateway: Running) -> None:
    stream = client(gateway).chat.completions.create(
        model="m", messages=[{"role": "user", "content": "one two three"}], stream=True,
        stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "You said: one two three"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert last.usage.completion_tokens == 5 and "cost" in last.usage.model_extra
    assert gateway.fake.calls[-1].stream is True


def test_stream_without_include_usage_has_no_usage_chunk(gateway: Running) -> None:
    chunks = list(client(gateway).chat.completions.create(
        model="m", messages=[{"role": "user", "content": "x"}], stream=True))
    assert all(c.usage is None for c in chunks)


def test_tools_round_trip(gateway: Running) -> None:
    call = ToolCall(id="call_1", name="get_weather", arguments='{"city": "Paris"}')
    gateway.fake.script([ChatResult(id="r1", model="echo", tool_calls=(call,), finish_reason="tool_calls",
                                    usage=Usage(10, 5))])
    tools = [{"type": "function", "function": {"name": "get_weather", "description": "Weather",
                                               "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]
    c = client(gateway)
    first = c.chat.completions.create(model="m", messages=[{"role": "user", "content": "weather?"}], tools=tools,
                                      tool_choice="auto")
    msg = first.choices[0].message
    assert first.choices[0].finish_reason == "tool_calls"
    assert msg.tool_calls and msg.tool_calls[0].function.name == "get_weather"
    assert json.loads(msg.tool_calls[0].function.arguments) == {"city": "Paris"}
    sent = gateway.fake.calls[-1]
    assert sent.tools[0].name == "get_weather" and sent.tool_choice == "auto"
    # The tool's answer goes back and reaches the provider as a tool message.
    c.chat.completions.create(model="m", tools=tools, messages=[
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": None, "tool_calls": [t.model_dump() for t in msg.tool_calls]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ])
    history = gateway.fake.calls[-1].messages
    assert history[1].tool_calls[0].arguments == '{"city": "Paris"}'
    assert history[2].role == "tool" and history[2].tool_call_id == "call_1" and history[2].text() == "sunny"


def test_streamed_tool_call_deltas(gateway: Running) -> None:
    gateway.fake.script([[Chunk(tool_calls=(ToolCallDelta(0, id="call_9", name="f", arguments='{"a"'),)),
                          Chunk(tool_calls=(ToolCallDelta(0, arguments=': 1}'),)),
                          Chunk(finish_reason="tool_calls", usage=Usage(3, 4))]])
    chunks = list(client(gateway).chat.completions.create(
        model="m", messages=[{"role": "user", "content": "x"}], stream=True))
    args = "".join(tc.function.arguments or "" for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or []))
    assert json.loads(args) == {"a": 1}
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"


def test_image_input_reaches_provider(gateway: Running) -> None:
    client(gateway).chat.completions.create(model="m", messages=[{"role": "user", "content": [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}", "detail": "low"}}]}])
    parts = gateway.fake.calls[-1].messages[0].content
    assert not isinstance(parts, str) and parts is not None
    image = parts[1]
    assert getattr(image, "data", None) == PNG and getattr(image, "media_type", None) == "image/png"


@pytest.mark.parametrize(("error", "exc_class", "status"), [
    (BudgetExceededError("monthly budget of $10 reached"), openai.RateLimitError, 429),
    (ContentPolicyError("blocked by policy"), openai.BadRequestError, 400),
    (RateLimitError("too many requests", retry_after=0.2), openai.RateLimitError, 429),
    (ProviderUnavailableError("upstream down"), openai.InternalServerError, 503),
])
def test_errors_map_to_sdk_classes(gateway: Running, error: Exception, exc_class: type[Exception], status: int) -> None:
    # Retryable errors are retried by the router (2 retries by default): script one per attempt.
    gateway.fake.script([error] * (3 if getattr(error, "retryable", False) else 1))
    with pytest.raises(exc_class) as info:
        client(gateway).chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    exc = info.value
    assert isinstance(exc, openai.APIStatusError) and exc.status_code == status
    body = exc.body if isinstance(exc.body, dict) else {}
    assert body.get("code") == type(error).code  # type: ignore[attr-defined]
    if isinstance(error, BudgetExceededError):
        assert exc.response.headers["x-should-retry"] == "false"
    if isinstance(error, RateLimitError):
        assert exc.response.headers["retry-after"] == "1"


def test_unknown_model_is_404(gateway: Running) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client(gateway).chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    assert info.value.code == "model_not_found"


def test_error_after_stream_started_is_an_error_event(gateway: Running) -> None:
    gateway.fake.script([["Hel", "lo"]])
    fake = gateway.fake
    original = fake.stream

    async def stream(request):  # type: ignore[no-untyped-def]
        async for c in original(request):
            yield c
        raise ProviderUnavailableError("connection dropped")

    fake.stream = stream  # type: ignore[method-assign]
    try:
        with pytest.raises(openai.APIError) as info:
            list(client(gateway).chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}],
                                                          stream=True))
    finally:
        del fake.stream
    assert "connection dropped" in str(info.value)


def test_models_and_embeddings(gateway: Running) -> None:
    c = client(gateway)
    names = {m.id for m in c.models.list()}
    assert {"m", "other"} <= names
    emb = c.embeddings.create(model="m", input=["a", "b c"])
    assert len(emb.data) == 2 and len(emb.data[0].embedding) == 8
    assert emb.usage.prompt_tokens == 3


def test_each_simulated_provider_kind_through_the_openai_edge(gateway: Running) -> None:
    groups = sim_groups(gateway)
    if not groups:
        pytest.skip("the simulator is not available")
    c = client(gateway)
    answered = []
    for group in groups:
        try:
            answer = c.chat.completions.create(model=group, messages=[{"role": "user", "content": "Hello!"}])
        except openai.NotFoundError:
            continue  # the simulator does not fake this provider's API yet
        assert answer.choices[0].message.content
        assert answer.usage is not None and answer.usage.total_tokens > 0
        chunks = list(c.chat.completions.create(model=group, messages=[{"role": "user", "content": "Hi"}], stream=True,
                                                stream_options={"include_usage": True}))
        assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
        answered.append(group)
    assert answered


def test_failover_group(gateway: Running) -> None:
    if "demo-failover" not in gateway.relay.settings.models or not sim_groups(gateway):
        pytest.skip("the simulator is not available")
    raw = client(gateway).chat.completions.with_raw_response.create(
        model="demo-failover", messages=[{"role": "user", "content": "Hello!"}])
    assert raw.parse().choices[0].message.content


def test_langchain_chat_openai(gateway: Running) -> None:
    lc = pytest.importorskip("langchain_openai")
    llm = lc.ChatOpenAI(model="m", base_url=gateway.url + "/v1", api_key="anything", max_retries=0)
    assert llm.invoke("hello langchain").content == "You said: hello langchain"
    assert "".join(str(c.content) for c in llm.stream("a b")) == "You said: a b"
