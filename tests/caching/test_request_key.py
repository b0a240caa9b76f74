"""The canonical key: same question -> same key; anything that changes the answer -> a new key."""

from __future__ import annotations

from dataclasses import fields, replace

import pytest

from llmrelay.caching.request_key import context_key, request_key
from llmrelay.types import ChatRequest, ImagePart, Message, Reasoning, TextPart, Tool, ToolCall

BASE = ChatRequest(
    model="fast",
    messages=(Message.system("Be brief."), Message.user("What is 2+2?")),
    tools=(Tool(name="calc", parameters={"type": "object", "properties": {"x": {"type": "number"}}}),),
    temperature=0,
)


def test_same_question_same_key_whatever_the_transport_or_caller() -> None:
    same = replace(BASE, stream=True, user="alice", metadata={"trace": "1"})
    assert request_key(BASE) == request_key(same)
    rebuilt = ChatRequest(model="fast", messages=(Message.system("Be brief."), Message.user("What is 2+2?")),
                          tools=BASE.tools, temperature=0)
    assert request_key(rebuilt) == request_key(BASE)


@pytest.mark.parametrize("change", [
    {"model": "smart"},
    {"messages": (Message.system("Be brief."), Message.user("What is 2+3?"))},
    {"messages": (Message.system("Be long."), Message.user("What is 2+2?"))},
    {"messages": (Message.user("What is 2+2?"),)},
    {"messages": (Message.system("Be brief."), Message.user([TextPart("What is 2+2?"), ImagePart(url="http://x/a.png")]))},
    {"messages": (*BASE.messages, Message.assistant(None, [ToolCall("c1", "calc", '{"x": 1}')]))},
    {"tools": ()},
    {"tools": (Tool(name="calc", description="adds"),)},
    {"tool_choice": "required"},
    {"parallel_tool_calls": False},
    {"temperature": 0.7},
    {"top_p": 0.5},
    {"top_k": 5},
    {"max_tokens": 10},
    {"stop": ("\n",)},
    {"seed": 1},
    {"response_format": {"type": "json_object"}},
    {"reasoning": Reasoning(effort="high")},
    {"n": 2},
    {"extra": {"logit_bias": {"50256": -100}}},
])
def test_every_parameter_that_changes_the_answer_changes_the_key(change: dict[str, object]) -> None:
    assert request_key(replace(BASE, **change)) != request_key(BASE)  # type: ignore[arg-type]


def test_scope_partitions_the_key() -> None:
    assert request_key(BASE, "key:a") != request_key(BASE, "key:b")
    assert request_key(BASE, "key:a") == request_key(BASE, "key:a")


def test_key_is_32_hex_digits() -> None:
    key = request_key(BASE)
    assert len(key) == 32 and int(key, 16) >= 0


def test_context_key_ignores_only_the_wording_of_the_last_question() -> None:
    a, text_a = context_key(BASE)
    b, text_b = context_key(replace(BASE, messages=(Message.system("Be brief."), Message.user("2+2 = ?"))))
    assert a == b and (text_a, text_b) == ("What is 2+2?", "2+2 = ?")
    c, _ = context_key(replace(BASE, messages=(Message.system("Be long."), Message.user("What is 2+2?"))))
    d, _ = context_key(replace(BASE, max_tokens=5))
    assert a != c and a != d


@pytest.mark.parametrize("field", [f.name for f in fields(Message) if f.name != "role"])
def test_every_message_field_is_part_of_the_question(field: str) -> None:
    value: object = {"content": "What is 2+3?", "tool_calls": (ToolCall("c1", "calc", "{}"),), "is_error": True}.get(field, "x")
    changed = (BASE.messages[0], replace(BASE.messages[1], **{field: value}))  # type: ignore[arg-type]
    assert request_key(replace(BASE, messages=changed)) != request_key(BASE)


def test_the_same_value_in_another_message_field_is_another_question() -> None:
    user = BASE.messages[1]
    a = replace(BASE, messages=(BASE.messages[0], replace(user, name="x")))
    b = replace(BASE, messages=(BASE.messages[0], replace(user, tool_call_id="x")))
    assert request_key(a) != request_key(b)
