"""The OpenAI stream decoder's byte path gives what decoding each SSE event as text gives.

The reference reads the lines with :class:`~llmrelay.streaming.SSEDecoder` (the WHATWG rules) and
hands every event to the decoder's text path (``_event``); the decoder under test takes the same
lines' events as bytes (``SSEDecoder.feed_data``) and parses them from those. Both must produce the
same chunks, and fail with the same error, on every recorded
OpenAI-compatible stream and on hand-made edge cases (invalid UTF-8, Unicode spaces, multi-line
data, comments, named events, CRLF lines, a body without its last blank line).
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from tests.conftest import WIRE
from tests.providers.wire_util import body_lines, cassettes, load_cassette

from llmrelay.errors import LLMRelayError
from llmrelay.providers.openai_stream import OpenAIStreamDecoder
from llmrelay.streaming import SSEDecoder
from llmrelay.types import Chunk

Outcome = tuple[list[Chunk], str | None]


def _run(step: Callable[[bytes], list[Chunk]], close: Callable[[], list[Chunk]], lines: list[bytes]) -> Outcome:
    out: list[Chunk] = []
    try:
        for line in lines:
            out += step(line)
        out += close()
    except LLMRelayError as exc:
        return out, f"{type(exc).__name__}: {exc.message}"
    return out, None


def by_bytes(lines: list[bytes]) -> Outcome:
    dec = OpenAIStreamDecoder("up")
    return _run(lambda line: list(dec.feed(line)), lambda: list(dec.close()), lines)


def by_text(lines: list[bytes]) -> Outcome:
    dec = OpenAIStreamDecoder("up")
    sse = SSEDecoder()

    def step(line: bytes) -> list[Chunk]:
        return [c for ev in sse.feed(line) for c in dec._event(ev)]

    def close() -> list[Chunk]:
        out = [c for ev in sse.flush() for c in dec._event(ev)]
        return out + list(dec.close())

    return _run(step, close, lines)


def _recorded() -> list[tuple[str, list[bytes]]]:
    streams = []
    for folder in ("openai", "groq", "deepseek", "openrouter", "mistral"):
        for path in cassettes(WIRE, folder):
            for it in load_cassette(path):
                if it.is_stream and it.response_text:
                    streams.append((f"{folder}/{path.stem}#{it.index}", body_lines(it.response_text)))
    return streams


RECORDED = _recorded()


def test_there_are_recorded_streams() -> None:
    assert len(RECORDED) >= 10


@pytest.mark.parametrize("lines", [lines for _, lines in RECORDED], ids=[name for name, _ in RECORDED])
def test_recorded_streams_decode_the_same(lines: list[bytes]) -> None:
    got = by_bytes(lines)
    assert got == by_text(lines)
    assert got[0], "a recorded stream gives chunks"


def _ev(payload: bytes) -> list[bytes]:
    return [b"data: " + payload, b""]


HEAD = _ev(b'{"id":"c1","model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}')
TEXT = _ev(b'{"id":"c1","choices":[{"index":0,"delta":{"content":"caf\xc3\xa9 \\u00e9"}}]}')
FINISH = _ev(b'{"id":"c1","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}')
USAGE = _ev(b'{"id":"c1","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}')
DONE = _ev(b"[DONE]")

CASES: dict[str, list[bytes]] = {
    "plain": HEAD + TEXT + FINISH + USAGE + DONE,
    "invalid utf-8 in a delta": HEAD + _ev(b'{"choices":[{"index":0,"delta":{"content":"a\xff\xfeb"}}]}') + FINISH + DONE,
    "unicode space around the data": [*HEAD, b'data: \xc2\xa0{"choices":[{"index":0,"delta":{"content":"x"}}]}\xc2\xa0', b"", *FINISH, *DONE],
    "unicode space around [DONE]": HEAD + TEXT + FINISH + [b"data: \xe2\x80\x83[DONE]", b""],
    "multi-line data": [*HEAD, b'data: {"choices":[{"index":0,', b'data: "delta":{"content":"two lines"}}]}', b"", *FINISH, *DONE],
    "no space after the colon": [*HEAD, b'data:{"choices":[{"index":0,"delta":{"content":"tight"}}]}', b"", *FINISH, *DONE],
    "comments and unknown fields": [b": keep-alive", b"retry: 100", b"id: 7", *HEAD, b": ping", *TEXT, *FINISH, *DONE],
    "a bare data field": [*HEAD, b"data", b"", *TEXT, *FINISH, *DONE],
    "blank data events": [*HEAD, b"data: ", b"", b"data:   ", b"", *FINISH, *DONE],
    "named error event, JSON": [*HEAD, b"event: error", b'data: {"error":{"message":"overloaded","code":529}}', b""],
    "named error event, text": [*HEAD, b"event: error", b"data: upstream exploded", b""],
    "error payload": HEAD + _ev(b'{"error":{"message":"rate limited","type":"rate_limit_error"}}'),
    "malformed JSON": HEAD + _ev(b'{"choices":[{"index":0,'),
    "ends without a blank line": HEAD + TEXT + FINISH + [b"data: [DONE]"],
    "ends without [DONE]": HEAD + TEXT + FINISH,
    "cut before the finish": HEAD + TEXT,
    "empty": [],
    "events after [DONE]": HEAD + FINISH + DONE + TEXT,
    "tool calls": HEAD + _ev(b'{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"t","function":'
                             b'{"name":"f","arguments":"{\\"a\\""}}]}}]}')
    + _ev(b'{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":":1}"}}]}}]}')
    + FINISH + DONE,
    "two choices": HEAD + _ev(b'{"choices":[{"index":1,"delta":{"content":"b"}},{"index":0,"delta":{"content":"a"}}]}')
    + _ev(b'{"choices":[{"index":1,"delta":{},"finish_reason":"length"}]}') + FINISH + USAGE + DONE,
}


@pytest.mark.parametrize("lines", list(CASES.values()), ids=list(CASES))
def test_edge_cases_decode_the_same(lines: list[bytes]) -> None:
    assert by_bytes(lines) == by_text(lines)


def test_invalid_utf8_is_replaced_not_refused() -> None:
    chunks, error = by_bytes(CASES["invalid utf-8 in a delta"])
    assert error is None
    assert "a\ufffd\ufffdb" in [c.text for c in chunks]


def test_multi_line_data_is_one_event() -> None:
    chunks, error = by_bytes(CASES["multi-line data"])
    assert error is None and "two lines" in [c.text for c in chunks]


def _padded(lines: list[bytes]) -> list[bytes]:
    """The same stream with an unknown null field in every delta (which the decoder ignores), so
    no delta is text alone: the general per-choice path instead of the text-only one."""
    def pad(m: re.Match[bytes]) -> bytes:
        return b'"delta":{"x_pad":null}' if m.group(1) else b'"delta":{"x_pad":null,'

    return [re.sub(rb'"delta":\s*\{(\s*\})?', pad, line) for line in lines]


TEXT_ONLY = {"plain": CASES["plain"], "two choices": CASES["two choices"],
             "finish with text": HEAD + _ev(b'{"choices":[{"index":0,"delta":{"content":"end"},"finish_reason":"length"}]}')
             + _ev(b'{"choices":[{"index":0,"delta":{"content":""}}]}') + DONE,
             "content null": HEAD + _ev(b'{"choices":[{"index":0,"delta":{"content":null}}]}') + FINISH + DONE}


@pytest.mark.parametrize("lines", [*TEXT_ONLY.values(), *(lines for _, lines in RECORDED)],
                         ids=[*TEXT_ONLY, *(name for name, _ in RECORDED)])
def test_text_only_deltas_decode_as_the_general_path(lines: list[bytes]) -> None:
    padded = _padded(lines)
    assert padded != lines or not any(b'"delta"' in line for line in lines)
    assert by_bytes(lines) == by_bytes(padded)
