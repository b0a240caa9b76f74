"""A cache hit's response body: the constant part is encoded once per cached entry and kept, and
the bytes are exactly what encode_result writes (id, created and model per response), for every
answer shape; through the edge, a hit that a layer changed is encoded afresh."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from llmrelay.caching.decoded import Decoded
from llmrelay.caching.entry import CachedAnswer, encode
from llmrelay.relay import Relay
from llmrelay.server import openai_codec
from llmrelay.server.app import create_app
from llmrelay.types import ChatResult, ToolCall, Usage

from ._asgi_client import call

RESULTS = [
    ChatResult(id="chatcmpl-abc", model="gpt", text="Hello.", finish_reason="stop", usage=Usage(12, 7)),
    ChatResult(id="msg_01", model="m", text="", finish_reason="length", usage=Usage(3, 0, 1)),
    ChatResult(id="", model="", text="ünïcode \u2028 \"quoted\"", finish_reason="stop", reasoning="think",
               usage=Usage(5, 9, 0, 0, 0, 4)),
    ChatResult(id="chatcmpl-t", model="gpt", text="", finish_reason="tool_calls", usage=Usage(4, 2),
               tool_calls=(ToolCall(id="c1", name="f", arguments='{"a":1}'), ToolCall(id="c2", name="g", arguments="{}"))),
]


def _entry(result: ChatResult) -> Decoded:
    answer = CachedAnswer(result, "up", "fake", "echo", 0.25, 1.0)
    return Decoded(encode(answer), answer)


@pytest.mark.parametrize("result", RESULTS, ids=range(len(RESULTS)))
@pytest.mark.parametrize("cost", [0.0, None, 0.00012345])
def test_encode_hit_writes_exactly_what_encode_result_writes(result: ChatResult, cost: float | None,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    entry = _entry(result)
    for now, request_id, model in ((1_700_000_000.2, "req_00ff", "fast"), (1_700_000_001.9, "req_0a0b", "fäst")):
        monkeypatch.setattr(openai_codec.time, "time", lambda now=now: now)
        expected = openai_codec.encode_result(result, model, request_id, cost)
        assert openai_codec.encode_hit(result, model, request_id, cost, entry) == expected
    # The constant part was kept once for this cost, and is what the next hit uses.
    assert [k for k in entry.rendered if k[1] == cost] and len(entry.rendered) == 1


def _config(tmp: Path) -> dict[str, object]:
    return {"providers": {"fake": {"kind": "fake"}}, "models": {"m": [{"provider": "fake", "model": "echo"}]},
            "storage": {"url": f"sqlite:///{tmp / 'l.db'}"}, "cache": {"enabled": True}}


async def test_hits_through_the_edge_share_the_kept_bytes_and_differ_only_per_response(tmp_path: Path) -> None:
    relay = Relay(_config(tmp_path))
    app = create_app(relay)
    body = orjson.dumps({"model": "m", "temperature": 0, "messages": [{"role": "user", "content": "say hi"}]})
    answers = []
    for _ in range(4):
        status, headers, out = await call(app, "POST", "/v1/chat/completions", body)
        assert status == 200
        answers.append((headers["x-llmrelay-cache"], orjson.loads(out), headers["x-llmrelay-request-id"]))
    assert [a[0] for a in answers] == ["miss", "hit", "hit", "hit"]
    miss = answers[0][1]
    for _, hit, request_id in answers[1:]:
        # The fake upstream's id is not a chatcmpl id, so each response has its own (from its
        # request id), as before; the rest equals the miss's body (cost 0 on a hit), field for field.
        assert hit["id"] == "chatcmpl-" + request_id.removeprefix("req_")
        expected = {**miss, "id": hit["id"], "created": hit["created"], "usage": {**miss["usage"], "cost": 0.0}}
        assert hit == expected
    assert len({a[1]["id"] for a in answers}) == 4
    cache = relay.services.state["cache.service"][1]
    (entry,) = cache.decoded._held.values()
    kept = [k for k in entry.rendered if k[0] == "openai.result_tail"]
    assert len(kept) == 1
    await relay.aclose()


async def test_collect_keeps_the_result_only_for_the_entrys_own_chunk() -> None:
    from collections.abc import AsyncIterator
    from dataclasses import replace

    from llmrelay.caching.decoded import HIT_NOTE
    from llmrelay.context import RequestContext
    from llmrelay.server._chat import collect
    from llmrelay.types import Chunk

    entry = _entry(RESULTS[0])
    (own,) = entry.chunks(False)

    async def one(chunk: Chunk) -> AsyncIterator[Chunk]:
        yield chunk

    def hit_ctx(provider: str) -> RequestContext:
        ctx = RequestContext(provider=provider)
        ctx.notes[HIT_NOTE] = entry
        return ctx

    first = await collect(one(own), hit_ctx("up"))
    assert await collect(one(own), hit_ctx("up")) is first
    # Another provider name on the context: its own result (the result names the provider).
    other = await collect(one(own), hit_ctx("up2"))
    assert other.provider == "up2" and first.provider == "up"
    # A layer above replaced the chunk (e.g. redacted the answer): collected afresh, never the kept one.
    changed = replace(own, text="Hello, [REDACTED].")
    fresh = await collect(one(changed), hit_ctx("up"))
    assert fresh is not first and fresh.text == "Hello, [REDACTED]."
    assert await collect(one(changed), hit_ctx("up")) is not fresh
