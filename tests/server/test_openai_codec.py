"""openai_codec.decode_chat: the shortcut for role + string messages decodes exactly as the checked path."""

from __future__ import annotations

from typing import Any

import pytest

from llmrelay.errors import InvalidRequestError
from llmrelay.server.openai_codec import _checked_message, _message, decode_chat

PLAIN = [
    {"role": "user", "content": "hi"},
    {"role": "system", "content": "be terse"},
    {"role": "developer", "content": "be terse"},
    {"role": "assistant", "content": "hello"},
    {"content": "", "role": "user"},
]


@pytest.mark.parametrize("raw", PLAIN)
def test_a_plain_message_is_the_checked_decoding(raw: dict[str, Any]) -> None:
    assert _message(raw, 3) == _checked_message(raw, "messages.3")


@pytest.mark.parametrize("raw", [
    {"role": "user", "content": "hi", "name": "ann"},
    {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
    {"role": "assistant", "content": "x", "reasoning_content": "because"},
    {"role": "assistant", "content": None},
    {"role": "tool", "tool_call_id": "c1", "content": "42"},
])
def test_other_shapes_take_the_checked_path(raw: dict[str, Any]) -> None:
    assert _message(raw, 0) == _checked_message(raw, "messages.0")


@pytest.mark.parametrize(("raw", "param"), [
    ({"role": ["user"], "content": "hi"}, "messages.1.role"),
    ({"role": "robot", "content": "hi"}, "messages.1.role"),
    ({"role": "user", "content": 5}, "messages.1.content"),
    ({"role": "tool", "content": "hi"}, "messages.1.tool_call_id"),
    ("hi", "messages.1"),
])
def test_bad_messages_name_their_field(raw: Any, param: str) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "ok"}, raw]}
    with pytest.raises(InvalidRequestError) as err:
        decode_chat(body)
    assert err.value.param == param
