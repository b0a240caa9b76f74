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


def test_text_chunk_fast_path_is_byte_identical_to_the_general_event() -> None:
    """A text-only chunk is written without building its delta dicts; the bytes must be those of
    the general path (the JSON of the same choice object), whatever the text and choice index."""
    import orjson

    from llmrelay.server.openai_codec import StreamEncoder
    from llmrelay.types import Chunk

    texts = ["hi", "", 'quo"te\\ and\nnew line', "é ü 中文 🙂", "\u2028\x00\x1f", "x" * 3000]
    for index in (0, 1, 7):
        enc = StreamEncoder("m", "req_abc", include_usage=False)
        enc._started.add(index)  # the role event is not what is compared here
        for text in texts:
            got = enc.chunk(Chunk(text=text, choice=index, finish_reason="stop" if text == "hi" else None))
            want = enc._event({"content": text}, index=index) if text else b""
            assert got == want
            if text:
                parsed = orjson.loads(got.removeprefix(b"data: "))
                assert parsed["choices"] == [{"index": index, "delta": {"content": text}, "finish_reason": None,
                                              "logprobs": None}]
        assert enc._finish == {index: "stop"}
