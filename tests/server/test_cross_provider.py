"""Any edge reaches any provider: each SDK against each simulated provider kind, tools and images
included, streamed and not (through the simulator's wire-faithful upstreams)."""

from __future__ import annotations

import base64
import json

import anthropic
import openai
import pytest

from llmrelay.server.demo import _KINDS

from .conftest import Running

GROUPS = [group for (_, _, group, _) in _KINDS.values()]
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 32).decode()
WEATHER = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


def group_or_skip(gw: Running, group: str) -> str:
    deps = gw.relay.settings.models.get(group)
    if not deps or not deps[0].provider.startswith("sim-"):
        pytest.skip(f"{group}: the simulator or this provider's adapter is not available")
    return group


@pytest.mark.parametrize("group", GROUPS)
@pytest.mark.parametrize("stream", [False, True])
def test_openai_sdk_tools_and_images(gateway: Running, group: str, stream: bool) -> None:
    model = group_or_skip(gateway, group)
    c = openai.OpenAI(base_url=gateway.url + "/v1", api_key="x", max_retries=0, timeout=10)
    tools = [{"type": "function", "function": {"name": "get_weather", "description": "Weather", "parameters": WEATHER}}]
    messages: list[dict] = [{"role": "user", "content": [
        {"type": "text", "text": "What is the weather where this photo was taken?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}]}]
    if stream:
        chunks = list(c.chat.completions.create(model=model, messages=messages, tools=tools, tool_choice="required",
                                                stream=True, stream_options={"include_usage": True}))
        finish = [ch.choices[0].finish_reason for ch in chunks if ch.choices and ch.choices[0].finish_reason]
        deltas = [tc for ch in chunks if ch.choices for tc in (ch.choices[0].delta.tool_calls or [])]
        call_id, name = deltas[0].id, deltas[0].function.name
        args = "".join(d.function.arguments or "" for d in deltas)
        assert chunks[-1].usage is not None and "cost" in chunks[-1].usage.model_extra
    else:
        answer = c.chat.completions.create(model=model, messages=messages, tools=tools, tool_choice="required")
        finish = [answer.choices[0].finish_reason]
        call = answer.choices[0].message.tool_calls[0]  # type: ignore[index]
        call_id, name, args = call.id, call.function.name, call.function.arguments
    assert finish[-1] == "tool_calls" and name == "get_weather"
    assert isinstance(json.loads(args), dict)
    messages += [{"role": "assistant", "content": None, "tool_calls": [
                     {"id": call_id, "type": "function", "function": {"name": name, "arguments": args}}]},
                 {"role": "tool", "tool_call_id": call_id, "content": "sunny, 21 C"}]
    final = c.chat.completions.create(model=model, messages=messages, tools=tools)
    assert final.choices[0].finish_reason == "stop" and final.choices[0].message.content


@pytest.mark.parametrize("group", GROUPS)
@pytest.mark.parametrize("stream", [False, True])
def test_anthropic_sdk_tools_and_images(gateway: Running, group: str, stream: bool) -> None:
    model = group_or_skip(gateway, group)
    c = anthropic.Anthropic(base_url=gateway.url, api_key="x", max_retries=0, timeout=10)
    tools = [{"name": "get_weather", "description": "Weather", "input_schema": WEATHER}]
    messages: list[dict] = [{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "text", "text": "What is the weather where this photo was taken?"}]}]
    kwargs = {"model": model, "max_tokens": 200, "tools": tools, "tool_choice": {"type": "any"}}
    if stream:
        with c.messages.stream(messages=messages, **kwargs) as s:  # type: ignore[arg-type]
            msg = s.get_final_message()
    else:
        msg = c.messages.create(messages=messages, **kwargs)  # type: ignore[arg-type]
    assert msg.stop_reason == "tool_use"
    use = next(b for b in msg.content if b.type == "tool_use")
    assert use.name == "get_weather" and isinstance(use.input, dict)
    messages += [{"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in msg.content]},
                 {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "sunny"}]}]
    final = c.messages.create(model=model, max_tokens=200, tools=tools, messages=messages)  # type: ignore[arg-type]
    assert final.stop_reason == "end_turn" and final.content[0].type == "text"
