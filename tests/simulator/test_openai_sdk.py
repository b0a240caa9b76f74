"""The official openai SDK, pointed at the simulator, parses everything it answers."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

PROMPT = [{"role": "user", "content": "What is the capital of France?"}]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 1}},
            "required": ["city", "days"],
        },
    },
}


@pytest.fixture
def client(sim_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{sim_url}/openai/v1", api_key="sk-test", max_retries=0)


def test_chat_answers_the_prompt_deterministically(client: openai.OpenAI) -> None:
    first = client.chat.completions.create(model="gpt-4o-mini", messages=PROMPT)
    second = client.chat.completions.create(model="gpt-4o-mini", messages=PROMPT)
    assert first.choices[0].message.content == second.choices[0].message.content
    assert "What is the capital of France?" in (first.choices[0].message.content or "")
    assert first.object == "chat.completion" and first.id.startswith("chatcmpl-")
    assert first.choices[0].finish_reason == "stop"
    assert first.usage is not None and first.usage.total_tokens == first.usage.prompt_tokens + first.usage.completion_tokens


def test_stream_matches_the_plain_answer(client: openai.OpenAI) -> None:
    plain = client.chat.completions.create(model="gpt-4o-mini", messages=PROMPT)
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=PROMPT, stream=True, stream_options={"include_usage": True}
    )
    text, usage, finish = [], None, None
    for chunk in stream:
        if chunk.choices:
            text.append(chunk.choices[0].delta.content or "")
            finish = chunk.choices[0].finish_reason or finish
        else:
            usage = chunk.usage
    assert "".join(text) == plain.choices[0].message.content
    assert finish == "stop"
    assert usage == plain.usage


def test_length_and_chunks_follow_headers(client: openai.OpenAI) -> None:
    headers = {"x-sim-words": "50", "x-sim-chunks": "7"}
    plain = client.chat.completions.create(model="gpt-4o-mini", messages=PROMPT, extra_headers=headers)
    assert len((plain.choices[0].message.content or "").split()) == 50
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=PROMPT, stream=True, extra_headers=headers)
    pieces = [c.choices[0].delta.content for c in stream if c.choices and c.choices[0].delta.content]
    assert len(pieces) == 7 and "".join(pieces) == plain.choices[0].message.content


def test_model_suffix_sets_length(client: openai.OpenAI) -> None:
    r = client.chat.completions.create(model="sim-model+words=12", messages=PROMPT)
    assert len((r.choices[0].message.content or "").split()) == 12
    assert r.model == "sim-model"


def test_tool_call_then_answer_with_the_result(client: openai.OpenAI) -> None:
    r = client.chat.completions.create(model="gpt-4o-mini", messages=PROMPT, tools=[WEATHER])  # type: ignore[list-item]
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.tool_calls
    call = choice.message.tool_calls[0]
    args = json.loads(call.function.arguments)  # type: ignore[union-attr]
    assert isinstance(args["city"], str) and args["days"] >= 1
    follow = [
        *PROMPT,
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "sunny and 21C"},
    ]
    r2 = client.chat.completions.create(model="gpt-4o-mini", messages=follow, tools=[WEATHER])  # type: ignore[arg-type, list-item]
    assert r2.choices[0].finish_reason == "stop"
    assert "sunny and 21C" in (r2.choices[0].message.content or "")


def test_parallel_tool_calls_stream(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=PROMPT, tools=[WEATHER], stream=True,  # type: ignore[list-item]
        extra_headers={"x-sim-tool-calls": "2"},
    )
    args: dict[int, str] = {}
    finish = None
    for chunk in stream:
        for d in chunk.choices[0].delta.tool_calls or () if chunk.choices else ():
            args[d.index] = args.get(d.index, "") + (d.function.arguments or "" if d.function else "")
        if chunk.choices and chunk.choices[0].finish_reason:
            finish = chunk.choices[0].finish_reason
    assert finish == "tool_calls" and sorted(args) == [0, 1]
    assert all(json.loads(a)["city"] for a in args.values())


def test_tool_choice_none_answers_with_text(client: openai.OpenAI) -> None:
    r = client.chat.completions.create(model="gpt-4o-mini", messages=PROMPT, tools=[WEATHER], tool_choice="none")  # type: ignore[list-item]
    assert r.choices[0].finish_reason == "stop" and not r.choices[0].message.tool_calls


def test_image_is_acknowledged(client: openai.OpenAI) -> None:
    content = [{"type": "text", "text": "Describe this"},
               {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]
    r = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": content}])  # type: ignore[misc, list-item]
    assert "I see 1 image" in (r.choices[0].message.content or "")


def test_reasoning_tokens_are_reported(client: openai.OpenAI) -> None:
    r = client.chat.completions.create(model="o3-mini", messages=PROMPT, reasoning_effort="low")
    details = r.usage.completion_tokens_details  # type: ignore[union-attr]
    assert details is not None and details.reasoning_tokens and details.reasoning_tokens > 0
    assert r.usage.completion_tokens > details.reasoning_tokens  # type: ignore[union-attr]
    assert (r.choices[0].message.model_extra or {}).get("reasoning_content")


def test_max_tokens_truncates_with_length(client: openai.OpenAI) -> None:
    r = client.chat.completions.create(model="gpt-4o-mini", messages=PROMPT, max_tokens=4)
    assert r.choices[0].finish_reason == "length" and r.usage is not None and r.usage.completion_tokens <= 4


def test_models_and_embeddings(client: openai.OpenAI) -> None:
    ids = [m.id for m in client.models.list()]
    assert "gpt-4o-mini" in ids
    e = client.embeddings.create(model="text-embedding-3-small", input=["alpha", "beta", "alpha"], dimensions=64)
    vecs = [d.embedding for d in e.data]
    assert len(vecs) == 3 and len(vecs[0]) == 64
    assert vecs[0] == pytest.approx(vecs[2]) and vecs[0] != vecs[1]
    floats = client.embeddings.create(model="text-embedding-3-small", input="alpha", dimensions=64, encoding_format="float")
    assert floats.data[0].embedding == pytest.approx(vecs[0], abs=1e-6)


def test_moderation_flags_trigger_words(client: openai.OpenAI) -> None:
    r = client.moderations.create(input=["have a nice day", "I will kill you"])
    assert [x.flagged for x in r.results] == [False, True]
    assert r.results[1].categories.violence and not r.results[0].categories.violence


def test_errors_raise_sdk_classes(client: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as rl:
        client.chat.completions.create(model="m", messages=PROMPT, extra_headers={"x-sim-fault": "429,retry_after=7"})
    assert rl.value.status_code == 429 and rl.value.response.headers["retry-after"] == "7"
    assert rl.value.code == "rate_limit_exceeded"
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="sim-model+fault=503", messages=PROMPT)
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="unknown-model", messages=PROMPT)
    bad = openai.OpenAI(base_url=str(client.base_url), api_key="invalid-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.chat.completions.create(model="m", messages=PROMPT)


def test_rate_limit_retry_after_is_honoured(client: openai.OpenAI, sim_url: str, http: httpx.Client) -> None:
    # The SDK waits Retry-After before its retry; with rate=0.5 and a fixed seed the retry succeeds.
    retrying = client.with_options(max_retries=1)
    http.post(f"{sim_url}/_sim/faults", json={"route": "openai", "fault": "429,retry_after=0"})
    with pytest.raises(openai.RateLimitError):
        retrying.chat.completions.create(model="m", messages=PROMPT)
    stats = http.get(f"{sim_url}/_sim/stats").json()
    assert stats["routes"]["openai.chat"]["calls"] == 2  # first call + one retry
