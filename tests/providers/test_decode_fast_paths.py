"""The single-answer shortcuts of the non-streamed answer path give what the general path gives.

Each shortcut (usage with only the three counts, a one-choice answer without a Choice, a one-chunk
result, a one-answer encode, the request copy per attempt) is compared with the general path on
the same input, over shapes that take it and shapes that must not.
"""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Any

import orjson
import pytest

from llmrelay.providers.openai_wire import choice_from_wire, result_from_body, usage_from_wire
from llmrelay.server.openai_codec import encode_result
from llmrelay.types import ChatRequest, ChatResult, Message, RawBody, ToolCall, Usage

USAGES: list[dict[str, Any]] = [
    {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19},
    {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
    {"prompt_tokens": True, "completion_tokens": 7, "total_tokens": 8},  # a bool is not a count here
    {"prompt_tokens": 12.0, "completion_tokens": 7, "total_tokens": 19},
    {"prompt_tokens": "12", "completion_tokens": 7, "total_tokens": 19},
    {"prompt_tokens": 12, "completion_tokens": 7, "prompt_cache_hit_tokens": 5},  # DeepSeek, no total
    {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19,
     "prompt_tokens_details": {"cached_tokens": 4}, "completion_tokens_details": {"reasoning_tokens": 3}},
]


def _general_usage(u: dict[str, Any]) -> Usage | None:
    # An unknown extra key takes the general path; it is ignored there.
    return usage_from_wire({**u, "x-unknown": 1})


@pytest.mark.parametrize("u", USAGES)
def test_usage_shortcut_matches_the_general_path(u: dict[str, Any]) -> None:
    assert usage_from_wire(u) == _general_usage(u)


def test_usage_shortcut_reads_the_counts() -> None:
    assert usage_from_wire(USAGES[0]) == Usage(input_tokens=12, output_tokens=7)


CHOICES: list[dict[str, Any]] = [
    {"index": 0, "message": {"role": "assistant", "content": "Hello."}, "finish_reason": "stop"},
    {"index": 0, "message": {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}}]},
     "finish_reason": "stop"},
    {"index": 0, "message": {"role": "assistant", "content": "x", "reasoning_content": "think"},
     "finish_reason": "length"},
    {"index": 0, "message": {"role": "assistant", "content": None, "refusal": "no"}, "finish_reason": "stop"},
    {"index": 0, "message": {"content": [{"type": "thinking", "thinking": "t"}, {"type": "text", "text": "a"}]},
     "finish_reason": None},
]


@pytest.mark.parametrize("choice", CHOICES)
def test_one_choice_answer_matches_the_choice_path(choice: dict[str, Any]) -> None:
    body = {"id": "chatcmpl-1", "model": "m", "choices": [choice], "usage": USAGES[0]}
    one = result_from_body(body, "up")
    expected = choice_from_wire(choice, 0)
    assert (one.text, one.tool_calls, one.finish_reason, one.reasoning) == (
        expected.text, expected.tool_calls, expected.finish_reason, expected.reasoning)
    assert (one.id, one.model, one.provider, one.choices, one.reasoning_signature) == ("chatcmpl-1", "m", "up", (), None)
    assert one.usage == Usage(12, 7)
    # With a second answer the general path runs; its first choice is the same answer.
    two = result_from_body({**body, "choices": [choice, {**CHOICES[0], "index": 1}]}, "up")
    assert two.all_choices()[0] == one.all_choices()[0]
    assert (two.text, two.tool_calls, two.finish_reason, two.reasoning) == (
        one.text, one.tool_calls, one.finish_reason, one.reasoning)


RESULTS = [
    ChatResult(id="a", model="m", text="hi", usage=Usage(3, 4)),
    ChatResult(id="a", model="m", text="", finish_reason="length", reasoning="r", reasoning_signature="sig"),
    ChatResult(id="a", model="m", text="", reasoning_signature=""),
    ChatResult(id="a", model="m", text="x", tool_calls=(ToolCall("c1", "f", "{}"),), finish_reason="tool_calls"),
]


@pytest.mark.parametrize("result", RESULTS)
def test_one_chunk_shortcut_matches_the_general_path(result: ChatResult) -> None:
    # Naming the one answer as choices=(...) takes the general path with the same meaning.
    general = replace(result, choices=result.all_choices())
    assert result.to_chunks() == general.to_chunks()
    assert len(result.to_chunks()) == 1


@pytest.mark.parametrize("result", RESULTS)
def test_encode_without_a_choice_matches_the_choice_path(result: ChatResult) -> None:
    general = replace(result, choices=result.all_choices())
    a = orjson.loads(encode_result(result, "pub", "req_1", 0.25))
    b = orjson.loads(encode_result(general, "pub", "req_1", 0.25))
    a.pop("created")
    b.pop("created")
    assert a == b
    assert a["choices"][0]["index"] == 0


def test_with_model_copies_every_field_but_the_model() -> None:
    req = ChatRequest(model="pub", messages=(Message.user("hi"),), temperature=0.5, max_tokens=9, stop=("x",),
                      user="u", metadata={"k": "v"}, extra={"e": 1}, n=2, stream=True)
    req = req.attach_raw(RawBody(b"{}", {}))
    copy = req.with_model("up")
    assert copy is not req and copy.model == "up" and req.model == "pub"
    for f in fields(ChatRequest):
        if f.name != "model":
            assert getattr(copy, f.name) is getattr(req, f.name), f.name
    assert copy.raw is req.raw
    with pytest.raises(AttributeError):
        copy.model = "other"  # type: ignore[misc]


BODIES: list[dict[str, Any]] = [
    {"model": "m", "messages": [{"role": "user", "content": "hi"}]},
    {"model": "m", "stream": True, "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "hi"}]},
    {"model": "m", "stream": False, "user": "u-1", "messages": [{"role": "user", "content": "hi"}]},
    {"model": "m", "stream": True, "stream_options": {"include_usage": True},
     "messages": [{"role": "assistant", "content": None, "tool_calls": [
         {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
         {"role": "tool", "tool_call_id": "c", "content": "r"}]},
]


@pytest.mark.parametrize("body", BODIES)
def test_simple_body_decodes_as_the_general_path(body: dict[str, Any]) -> None:
    from llmrelay.server.openai_codec import decode_chat

    # A field present as null is looked for and found empty: the general path, same meaning.
    assert decode_chat(body) == decode_chat({**body, "temperature": None})


@pytest.mark.parametrize("body", [
    {"model": "m", "stream": "yes", "messages": [{"role": "user", "content": "hi"}]},
    {"model": "m", "user": 5, "messages": [{"role": "user", "content": "hi"}]},
])
def test_simple_body_is_still_checked(body: dict[str, Any]) -> None:
    from llmrelay.errors import InvalidRequestError
    from llmrelay.server.openai_codec import decode_chat

    with pytest.raises(InvalidRequestError):
        decode_chat(body)
