"""The official anthropic SDK against a real running gateway: any provider behind the Messages API."""

from __future__ import annotations

import base64

import anthropic
import pytest

from llmrelay.errors import BudgetExceededError, ContentPolicyError, ProviderUnavailableError
from llmrelay.types import ChatResult, Chunk, ToolCall, ToolCallDelta, Usage

from .conftest import Running, sim_groups

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 16).decode()


def client(gw: Running, key: str = "anything") -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gw.url, api_key=key, max_retries=0, timeout=10)


def test_messages_non_streamed(gateway: Running) -> None:
    gateway.fake.script([ChatResult(id="x", model="echo", text="Hi!", usage=Usage(input_tokens=30, output_tokens=2,
                                                                                  cache_read_tokens=20))])
    raw = client(gateway).messages.with_raw_response.create(
        model="m", max_tokens=50, system="be brief", messages=[{"role": "user", "content": "hello"}])
    msg = raw.parse()
    assert msg.content[0].type == "text" and msg.content[0].text == "Hi!"
    assert msg.stop_reason == "end_turn"
    # Anthropic's input_tokens excludes cache reads, reported apart.
    assert msg.usage.input_tokens == 10 and msg.usage.cache_read_input_tokens == 20
    assert raw.headers["x-llmrelay-provider"] == "fake"
    sent = gateway.fake.calls[-1]
    assert sent.messages[0].role == "system" and sent.max_tokens == 50


def test_messages_streamed(gateway: Running) -> None:
    with client(gateway).messages.stream(model="m", max_tokens=50,
                                         messages=[{"role": "user", "content": "one two"}]) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "You said: one two" == final.content[0].text  # type: ignore[union-attr]
    assert final.usage.output_tokens == 4 and final.stop_reason == "end_turn"


def test_tool_use_round_trip(gateway: Running) -> None:
    gateway.fake.script([ChatResult(id="r", model="echo", text="Checking.",
                                    tool_calls=(ToolCall("toolu_1", "get_weather", '{"city": "Oslo"}'),),
                                    finish_reason="tool_calls", usage=Usage(5, 5))])
    tools = [{"name": "get_weather", "description": "Weather", "input_schema": {"type": "object",
                                                                                "properties": {"city": {"type": "string"}}}}]
    c = client(gateway)
    msg = c.messages.create(model="m", max_tokens=100, tools=tools,  # type: ignore[arg-type]
                            tool_choice={"type": "any"}, messages=[{"role": "user", "content": "weather?"}])
    assert msg.stop_reason == "tool_use"
    use = next(b for b in msg.content if b.type == "tool_use")
    assert use.name == "get_weather" and use.input == {"city": "Oslo"}
    assert gateway.fake.calls[-1].tool_choice == "required"
    c.messages.create(model="m", max_tokens=100, tools=tools, messages=[  # type: ignore[arg-type]
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": [b.model_dump() for b in msg.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "cold"}]},
    ])
    history = gateway.fake.calls[-1].messages
    assert history[1].tool_calls[0].id == "toolu_1" and history[1].text() == "Checking."
    assert history[2].role == "tool" and history[2].tool_call_id == "toolu_1" and history[2].text() == "cold"


def test_streamed_tool_use(gateway: Running) -> None:
    gateway.fake.script([[Chunk(text="Let me look."),
                          Chunk(tool_calls=(ToolCallDelta(0, id="call_7", name="lookup", arguments='{"q": '),)),
                          Chunk(tool_calls=(ToolCallDelta(0, arguments='"x"}'),)),
                          Chunk(finish_reason="tool_calls", usage=Usage(3, 4))]])
    with client(gateway).messages.stream(model="m", max_tokens=50,
                                         messages=[{"role": "user", "content": "find"}]) as stream:
        final = stream.get_final_message()
    # Layers may hold text back (output safety scans it), so only the blocks, not their order, are fixed.
    assert sorted(b.type for b in final.content) == ["text", "tool_use"]
    use = next(b for b in final.content if b.type == "tool_use")
    assert use.input == {"q": "x"} and use.id == "call_7"
    assert final.stop_reason == "tool_use"


def test_image_block_reaches_provider(gateway: Running) -> None:
    client(gateway).messages.create(model="m", max_tokens=10, messages=[{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "text", "text": "what is it?"}]}])
    parts = gateway.fake.calls[-1].messages[0].content
    assert parts is not None and not isinstance(parts, str)
    assert getattr(parts[0], "data", None) == PNG


@pytest.mark.parametrize(("error", "exc_class"), [
    (BudgetExceededError("budget reached"), anthropic.RateLimitError),
    (ContentPolicyError("blocked"), anthropic.BadRequestError),
])
def test_errors_map_to_sdk_classes(gateway: Running, error: Exception, exc_class: type[Exception]) -> None:
    gateway.fake.script([error])
    with pytest.raises(exc_class):
        client(gateway).messages.create(model="m", max_tokens=10, messages=[{"role": "user", "content": "x"}])


def test_unknown_model_and_bad_key_classes(gateway: Running, secured: Running) -> None:
    with pytest.raises(anthropic.NotFoundError):
        client(gateway).messages.create(model="nope", max_tokens=10, messages=[{"role": "user", "content": "x"}])
    with pytest.raises(anthropic.AuthenticationError):
        client(secured, key="wrong").messages.create(model="m", max_tokens=10, messages=[{"role": "user", "content": "x"}])


def test_error_after_stream_started_is_an_error_event(gateway: Running) -> None:
    fake = gateway.fake
    original = fake.stream

    async def stream(request):  # type: ignore[no-untyped-def]
        async for c in original(request):
            yield c
        raise ProviderUnavailableError("connection dropped")

    fake.stream = stream  # type: ignore[method-assign]
    try:
        with pytest.raises(anthropic.APIStatusError) as info, client(gateway).messages.stream(
                model="m", max_tokens=10, messages=[{"role": "user", "content": "x"}]) as s:
            list(s.text_stream)
    finally:
        del fake.stream
    assert "connection dropped" in str(info.value)


def test_count_tokens(gateway: Running) -> None:
    small = client(gateway).messages.count_tokens(model="m", messages=[{"role": "user", "content": "hi"}])
    big = client(gateway).messages.count_tokens(model="m", messages=[{"role": "user", "content": "hi " * 400}])
    assert 0 < small.input_tokens < big.input_tokens


def test_each_simulated_provider_kind_through_the_anthropic_edge(gateway: Running) -> None:
    groups = sim_groups(gateway)
    if not groups:
        pytest.skip("the simulator is not available")
    c = client(gateway)
    answered = []
    for group in groups:
        try:
            msg = c.messages.create(model=group, max_tokens=64, messages=[{"role": "user", "content": "Hello!"}])
        except anthropic.NotFoundError:
            continue  # the simulator does not fake this provider's API yet
        assert msg.content and msg.usage.output_tokens > 0
        with c.messages.stream(model=group, max_tokens=64, messages=[{"role": "user", "content": "Hi"}]) as s:
            assert "".join(s.text_stream)
        answered.append(group)
    assert answered
