"""Several extended-thinking blocks in one Anthropic answer, through the Anthropic edge: each block
keeps its own signature, streamed and not, so a client can send the turn back verbatim.

The upstream is a MockTransport replaying the recorded thinking stream
(anthropic/test_anthropic_model_thinking_part_stream.yaml) with a second signed thinking block
spliced in after the first, in the recorded event shapes (the interleaved-thinking form of the
protocol has no recording yet).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import orjson
import pytest
import yaml
from tests.conftest import WIRE, serve_asgi

from llmrelay.providers.anthropic_decode import AnthropicStreamDecoder, result_from_body
from llmrelay.relay import Relay
from llmrelay.server.anthropic_codec import StreamEncoder, encode_result
from llmrelay.server.app import create_app
from llmrelay.streaming import Assembler
from llmrelay.transport import HTTPRequest, MockResponse, MockTransport

from .conftest import Running

RECORDING = WIRE / "anthropic" / "test_anthropic_model_thinking_part_stream.yaml"
SECOND_THOUGHT = ["Then again, ", "check the lights."]
# Split in two deltas, as a long signature may arrive.
SECOND_SIGNATURE = ("EqQBCkYIBxgCKkB2second", "BlockSignatureZZ==")


def _recorded_events(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        pytest.skip(f"no recording at {path}")
    body = yaml.safe_load(path.read_text())["interactions"][0]["response"]["body"]["string"]
    return [orjson.loads(line[6:]) for line in body.splitlines() if line.startswith("data: ")]


def _second_block(index: int) -> list[dict[str, Any]]:
    delta = "content_block_delta"
    return [
        {"type": "content_block_start", "index": index, "content_block": {"type": "thinking", "thinking": "", "signature": ""}},
        *({"type": delta, "index": index, "delta": {"type": "thinking_delta", "thinking": t}} for t in SECOND_THOUGHT),
        *({"type": delta, "index": index, "delta": {"type": "signature_delta", "signature": s}} for s in SECOND_SIGNATURE),
        {"type": "content_block_stop", "index": index},
    ]


def two_block_events() -> list[dict[str, Any]]:
    """The recorded stream with a second thinking block after the first; later blocks move up one."""
    out: list[dict[str, Any]] = []
    for ev in _recorded_events(RECORDING):
        if "index" in ev and ev["index"] >= 1:
            ev = {**ev, "index": ev["index"] + 1}
        out.append(ev)
        if ev["type"] == "content_block_stop" and ev["index"] == 0:
            out.extend(_second_block(1))
    return out


def sse(events: list[dict[str, Any]]) -> bytes:
    return b"".join(b"event: " + e["type"].encode() + b"\ndata: " + orjson.dumps(e) + b"\n\n" for e in events)


def recorded_first_block() -> tuple[str, str]:
    thinking, signature = [], ""
    for ev in _recorded_events(RECORDING):
        delta = ev.get("delta") or {}
        if ev.get("index") == 0 and delta.get("type") == "thinking_delta":
            thinking.append(delta["thinking"])
        elif ev.get("index") == 0 and delta.get("type") == "signature_delta":
            signature += delta["signature"]
    return "".join(thinking), signature


def expected_blocks() -> list[tuple[str, str]]:
    return [recorded_first_block(), ("".join(SECOND_THOUGHT), "".join(SECOND_SIGNATURE))]


def decode(events: list[dict[str, Any]]) -> Iterator[Any]:
    dec = AnthropicStreamDecoder(map_error=lambda body: RuntimeError(body))
    for line in sse(events).split(b"\n"):
        yield from dec.feed(line)
    yield from dec.close()


def edge_events(chunks: list[Any]) -> list[dict[str, Any]]:
    enc = StreamEncoder("think", "req_1")
    data = b"".join(enc.chunk(c) for c in chunks) + enc.end(None)
    return [orjson.loads(line[6:]) for line in data.split(b"\n") if line.startswith(b"data: ")]


def blocks_of(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(thinking, signature) of each thinking block, rebuilt from the events as a client does."""
    blocks: dict[int, list[str]] = {}
    for ev in events:
        if ev["type"] == "content_block_start" and ev["content_block"]["type"] == "thinking":
            blocks[ev["index"]] = ["", ""]
        elif ev["type"] == "content_block_delta" and ev["index"] in blocks:
            d = ev["delta"]
            if d["type"] == "thinking_delta":
                blocks[ev["index"]][0] += d["thinking"]
            elif d["type"] == "signature_delta":
                blocks[ev["index"]][1] = d["signature"]  # the SDK keeps the last one it saw
    return [(t, s) for t, s in (blocks[i] for i in sorted(blocks))]


def test_each_streamed_thinking_block_keeps_its_signature_at_the_edge() -> None:
    chunks = list(decode(two_block_events()))
    events = edge_events(chunks)
    assert blocks_of(events) == expected_blocks()
    kinds = [e["content_block"]["type"] for e in events if e["type"] == "content_block_start"]
    assert kinds == ["thinking", "thinking", "text"]
    # The whole-turn envelope (for library users) is not sent as a block's signature.
    asm = Assembler()
    for c in chunks:
        asm.add(c)
    assert asm.result().reasoning_signature not in {s for _, s in blocks_of(events)}


def test_single_block_stream_is_unchanged() -> None:
    events = edge_events(list(decode(_recorded_events(RECORDING))))
    assert blocks_of(events) == [recorded_first_block()]


def test_non_streamed_answer_keeps_every_block_verbatim() -> None:
    blocks = [{"type": "thinking", "thinking": t, "signature": s} for t, s in expected_blocks()]
    blocks.insert(1, {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4a"})
    body = {"id": "msg_1", "model": "claude-sonnet-4-0", "stop_reason": "end_turn",
            "content": [*blocks, {"type": "text", "text": "Look both ways."}],
            "usage": {"input_tokens": 43, "output_tokens": 120}}
    out = orjson.loads(encode_result(result_from_body(body), "think", "req_1", None))
    assert out["content"] == body["content"]


# ----------------------------------------------------------------- the anthropic SDK, end to end


def _upstream(request: HTTPRequest) -> MockResponse:
    if request.method == "GET":  # the start-up health check lists the models
        model = {"type": "model", "id": "claude-sonnet-4-0", "display_name": "Claude Sonnet 4",
                 "created_at": "2025-05-14T00:00:00Z"}
        return MockResponse(200, {"content-type": "application/json"}, orjson.dumps(
            {"data": [model], "has_more": False, "first_id": model["id"], "last_id": model["id"]}))
    sent = orjson.loads(request.body or b"{}")
    if sent.get("stream"):
        return MockResponse(200, {"content-type": "text/event-stream"}, sse(two_block_events()))
    blocks = [{"type": "thinking", "thinking": t, "signature": s} for t, s in expected_blocks()]
    return MockResponse(200, {"content-type": "application/json"}, orjson.dumps({
        "id": "msg_2", "type": "message", "role": "assistant", "model": sent["model"], "stop_reason": "end_turn",
        "content": [*blocks, {"type": "text", "text": "Look both ways."}],
        "usage": {"input_tokens": 43, "output_tokens": 120}}))


@pytest.fixture(scope="module")
def thinking_gateway() -> Iterator[tuple[Running, MockTransport]]:
    # Skip here, not in the upstream: a skip raised in the gateway's thread is a 500 to the test.
    if not RECORDING.is_file():
        pytest.skip(f"no recording at {RECORDING}")
    transport = MockTransport(_upstream)
    config = {"providers": {"up": {"kind": "anthropic", "base_url": "http://upstream.invalid", "api_key": "x"}},
              "models": {"think": [{"provider": "up", "model": "claude-sonnet-4-0"}]},
              "storage": {"url": "sqlite://:memory:"}}
    relay = Relay(config, transports={"up": transport})
    app = create_app(relay)
    with serve_asgi(app, start_timeout_s=10) as url:
        yield Running(url, relay, app), transport


def _client(url: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=url, api_key="k", max_retries=0, timeout=10)


ASK: dict[str, Any] = {"model": "think", "max_tokens": 4096, "thinking": {"type": "enabled", "budget_tokens": 1024},
                       "messages": [{"role": "user", "content": "How do I cross the street?"}]}


def test_anthropic_sdk_streams_each_block_with_its_signature(thinking_gateway: tuple[Running, MockTransport]) -> None:
    running, transport = thinking_gateway
    with _client(running.url).messages.stream(**ASK) as stream:
        final = stream.get_final_message()
    thinking = [(b.thinking, b.signature) for b in final.content if b.type == "thinking"]
    assert thinking == expected_blocks()
    assert final.content[-1].type == "text" and final.content[-1].text.endswith("crossing streets.")
    # The turn goes back upstream with both blocks, each with its signature.
    follow = _client(running.url).messages.create(**{**ASK, "messages": [
        *ASK["messages"], {"role": "assistant", "content": [b.model_dump() for b in final.content]},
        {"role": "user", "content": "And at night?"}]})
    assert follow.content
    sent = orjson.loads(transport.requests[-1].body or b"{}")
    sent_blocks = [(b["thinking"], b["signature"]) for b in sent["messages"][1]["content"] if b["type"] == "thinking"]
    assert sent_blocks == expected_blocks()


def test_anthropic_sdk_non_streamed_keeps_each_block(thinking_gateway: tuple[Running, MockTransport]) -> None:
    running, _ = thinking_gateway
    msg = _client(running.url).messages.create(**ASK)
    assert [(b.thinking, b.signature) for b in msg.content if b.type == "thinking"] == expected_blocks()


def test_a_whole_answer_in_one_chunk_streams_each_block() -> None:
    """A cache hit or a non-streamed upstream replayed as a stream: one chunk, the envelope."""
    blocks = [{"type": "thinking", "thinking": t, "signature": s} for t, s in expected_blocks()]
    blocks.append({"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4a"})
    body = {"id": "msg_1", "model": "claude-sonnet-4-0", "stop_reason": "end_turn",
            "content": [*blocks, {"type": "text", "text": "Look both ways."}],
            "usage": {"input_tokens": 43, "output_tokens": 120}}
    events = edge_events(list(result_from_body(body).to_chunks()))
    assert blocks_of(events) == expected_blocks()
    starts = [e["content_block"] for e in events if e["type"] == "content_block_start"]
    assert [b["type"] for b in starts] == ["thinking", "thinking", "redacted_thinking", "text"]
    assert starts[2]["data"] == blocks[2]["data"]
