"""SSEDecoder against a line-by-line reference of the WHATWG rules (each line decoded on its own).

The decoder keeps data lines as bytes and decodes an event once, when it completes
(``feed_data``); the events it gives must be those of decoding every line as it comes.
"""

from __future__ import annotations

import pytest

from llmrelay.streaming import SSEDecoder, SSEEvent


def reference(lines: list[bytes]) -> list[SSEEvent]:
    out: list[SSEEvent] = []
    event: str | None = None
    data: list[str] = []
    ident: str | None = None
    for line in [*lines, b""]:
        if not line:
            if data:
                out.append(SSEEvent(event, "\n".join(data), ident))
            event, data = None, []
            continue
        if line[:1] == b":":
            continue
        name, sep, value = line.decode("utf-8", errors="replace").partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "data":
            data.append(value)
        elif name == "event":
            event = value
        elif name == "id":
            ident = value
    return out


def decoded(lines: list[bytes]) -> list[SSEEvent]:
    dec = SSEDecoder()
    return [ev for line in lines for ev in dec.feed(line)] + list(dec.flush())


CASES = {
    "one event": [b"data: {\"a\": 1}", b""],
    "no space after the colon": [b"data:x", b""],
    "two spaces keep one": [b"data:  x", b""],
    "multi-line data": [b"data: a", b"data: b", b"data", b""],
    "named event and id": [b"event: error", b"id: 7", b"data: boom", b"", b"data: next", b""],
    "comments and unknown fields": [b": keep-alive", b"retry: 10", b"foo: bar", b"data: x", b""],
    "invalid UTF-8 at a line's end": [b"data: caf\xc3", b"data: \xa9", b""],
    "invalid UTF-8 in a field name": [b"ev\xffent: x", b"data: y", b""],
    "blank lines only": [b"", b"", b""],
    "no final blank line": [b"data: last"],
    "an empty data line": [b"data:", b""],
    "a field without a colon": [b"event", b"data: z", b""],
}


@pytest.mark.parametrize("lines", list(CASES.values()), ids=list(CASES))
def test_events_equal_the_line_by_line_reference(lines: list[bytes]) -> None:
    assert decoded(lines) == reference(lines)


def test_feed_data_gives_the_event_bytes_undecoded() -> None:
    dec = SSEDecoder()
    assert dec.feed_data(b"event: delta") is None
    assert dec.feed_data(b"data: caf\xc3\xa9") is None
    assert dec.feed_data(b"data: 2") is None
    assert dec.feed_data(b"") == ("delta", "café\n2".encode())
    assert dec.feed_data(b"") is None  # nothing pending: no event
