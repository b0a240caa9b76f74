"""The official anthropic SDK, pointed at the simulator, parses everything it answers."""

from __future__ import annotations

import anthropic
import httpx
import pytest

PROMPT = [{"role": "user", "content": "Name three primary colours"}]
TOOL = {"name": "lookup", "description": "Look a word up",
        "input_schema": {"type": "object", "properties": {"word": {"type": "string"}, "lang": {"enum": ["en", "fr"]}},
                         "required": ["word", "lang"]}}


@pytest.fixture
def client(sim_url: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=f"{sim_url}/anthropic", api_key="sk-ant-test", max_retries=0)


def test_message_and_stream_agree(client: anthropic.Anthropic) -> None:
    plain = client.messages.create(model="claude-haiku-4-5", max_tokens=200, messages=PROMPT)  # type: ignore[arg-type]
    assert plain.id.startswith("msg_01") and plain.stop_reason == "end_turn"
    text = plain.content[0].text  # type: ignore[union-attr]
    assert text.startswith("This is a simulated answer to: Name three")
    with client.messages.stream(model="claude-haiku-4-5", max_tokens=200, messages=PROMPT) as s:  # type: ignore[arg-type]
        events = [e.type for e in s]
        final = s.get_final_message()
    assert final.content[0].text == text  # type: ignore[union-attr]
    assert final.usage.input_tokens == plain.usage.input_tokens
    assert final.usage.output_tokens == plain.usage.output_tokens
    assert events[0] == "message_start" and events[-1] == "message_stop"


def test_raw_event_sequence_is_the_real_one(sim_url: str, http: httpx.Client) -> None:
    body = {"model": "claude-haiku-4-5", "max_tokens": 100, "stream": True, "messages": PROMPT,
            "thinking": {"type": "enabled", "budget_tokens": 1024}}
    headers = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
    r = http.post(f"{sim_url}/anthropic/v1/messages", json=body, headers=headers)
    names = [line[7:] for line in r.text.splitlines() if line.startswith("event: ")]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[-2:] == ["message_delta", "message_stop"]
    assert names.count("content_block_start") == names.count("content_block_stop") == 2
    assert '"thinking_delta"' in r.text and '"signature_delta"' in r.text and '"text_delta"' in r.text


def test_thinking_block_and_tool_use(client: anthropic.Anthropic) -> None:
    r = client.messages.create(model="claude-haiku-4-5", max_tokens=2000, messages=PROMPT,  # type: ignore[arg-type]
                               thinking={"type": "enabled", "budget_tokens": 1024}, tools=[TOOL])  # type: ignore[list-item]
    kinds = [b.type for b in r.content]
    assert kinds == ["thinking", "tool_use"] and r.stop_reason == "tool_use"
    call = r.content[1]
    assert call.input == {"word": "example word", "lang": "en"}  # type: ignore[union-attr]
    follow = [*PROMPT, {"role": "assistant", "content": [b.model_dump() for b in r.content]},
              {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "red green blue"}]}]  # type: ignore[union-attr]
    r2 = client.messages.create(model="claude-haiku-4-5", max_tokens=2000, messages=follow, tools=[TOOL])  # type: ignore[arg-type, list-item]
    assert r2.stop_reason == "end_turn" and "red green blue" in r2.content[0].text  # type: ignore[union-attr]


def test_streamed_parallel_tool_use(client: anthropic.Anthropic) -> None:
    with client.messages.stream(model="claude-haiku-4-5", max_tokens=500, messages=PROMPT, tools=[TOOL],  # type: ignore[arg-type, list-item]
                                tool_choice={"type": "tool", "name": "lookup"},
                                extra_headers={"x-sim-tool-calls": "2"}) as s:
        final = s.get_final_message()
    uses = [b for b in final.content if b.type == "tool_use"]
    assert len(uses) == 2 and all(u.input == {"word": "example word", "lang": "en"} for u in uses)
    assert len({u.id for u in uses}) == 2


def test_prefill_is_continued(client: anthropic.Anthropic) -> None:
    full = client.messages.create(model="claude-haiku-4-5", max_tokens=200, messages=PROMPT).content[0].text  # type: ignore[arg-type, union-attr]
    head = full[:17]
    cont = client.messages.create(model="claude-haiku-4-5", max_tokens=200,
                                  messages=[*PROMPT, {"role": "assistant", "content": head}])  # type: ignore[list-item]
    assert head + cont.content[0].text == full  # type: ignore[union-attr]


def test_cached_tokens_are_split_out(client: anthropic.Anthropic) -> None:
    plain = client.messages.create(model="claude-haiku-4-5", max_tokens=200, messages=PROMPT)  # type: ignore[arg-type]
    cached = client.messages.create(model="claude-haiku-4-5", max_tokens=200, messages=PROMPT,  # type: ignore[arg-type]
                                    extra_headers={"x-sim-cached": "3"})
    assert cached.usage.cache_read_input_tokens == 3
    assert cached.usage.input_tokens + 3 == plain.usage.input_tokens


def test_count_tokens_and_models(client: anthropic.Anthropic) -> None:
    plain = client.messages.create(model="claude-haiku-4-5", max_tokens=200, messages=PROMPT)  # type: ignore[arg-type]
    counted = client.messages.count_tokens(model="claude-haiku-4-5", messages=PROMPT)  # type: ignore[arg-type]
    assert counted.input_tokens == plain.usage.input_tokens
    assert "claude-sonnet-4-5" in [m.id for m in client.models.list()]


def test_errors_raise_sdk_classes(client: anthropic.Anthropic, sim_url: str, http: httpx.Client) -> None:
    with pytest.raises(anthropic.RateLimitError) as rl:
        client.messages.create(model="claude-haiku-4-5", max_tokens=10, messages=PROMPT,  # type: ignore[arg-type]
                               extra_headers={"x-sim-fault": "429,retry_after=5"})
    assert rl.value.response.headers["retry-after"] == "5"
    assert rl.value.response.headers["anthropic-ratelimit-requests-remaining"] == "0"
    assert rl.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    with pytest.raises(anthropic.InternalServerError) as over:
        client.messages.create(model="claude-haiku-4-5+fault=529", max_tokens=10, messages=PROMPT)  # type: ignore[arg-type]
    assert over.value.status_code == 529 and over.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]
    with pytest.raises(anthropic.BadRequestError):
        client.messages.create(model="claude-haiku-4-5", max_tokens=10, messages=[])
    with pytest.raises(anthropic.AuthenticationError):
        anthropic.Anthropic(base_url=f"{sim_url}/anthropic", api_key="invalid", max_retries=0).messages.create(
            model="claude-haiku-4-5", max_tokens=10, messages=PROMPT)  # type: ignore[arg-type]
    missing_version = http.post(f"{sim_url}/anthropic/v1/messages", headers={"x-api-key": "k"},
                                 json={"model": "m", "max_tokens": 1, "messages": PROMPT})
    assert missing_version.status_code == 400 and "anthropic-version" in missing_version.json()["error"]["message"]


def test_rate_limit_headers_on_success(sim_url: str, http: httpx.Client) -> None:
    headers = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
    body = {"model": "m", "max_tokens": 10, "messages": PROMPT}
    first = http.post(f"{sim_url}/anthropic/v1/messages", json=body, headers=headers).headers
    second = http.post(f"{sim_url}/anthropic/v1/messages", json=body, headers=headers).headers
    a, b = int(first["anthropic-ratelimit-requests-remaining"]), int(second["anthropic-ratelimit-requests-remaining"])
    assert b < a or b == int(second["anthropic-ratelimit-requests-limit"]) - 1  # b resets only at a new minute
    assert first["anthropic-ratelimit-requests-reset"].endswith("Z")
