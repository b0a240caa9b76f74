"""Joined duplicates through the OpenAI edge: every caller of a flight is answered from the
flight's one chunk, its result collected once and its body's constant part encoded once per cost
(the payer's and the joined callers' 0), byte for byte what encode_result writes per caller."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest
from tests.server._asgi_client import call

from llmrelay import Relay
from llmrelay.caching.decoded import HIT_NOTE, FlightAnswer
from llmrelay.caching.fanout import Flight
from llmrelay.server import _chat, openai_codec
from llmrelay.server.app import create_app

from .conftest import HeldFake, relay_config, until_all_joined

N = 12


async def _joined_storm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[dict[str, Any]], int, int]:
    """N identical calls that all join one held flight: (bodies, choices encoded, upstream calls)."""
    relay = Relay(relay_config(tmp_path, cache={"enabled": False}))
    held = HeldFake(relay.services.providers["fake"], gate := asyncio.Event())
    encoded = 0
    choice_json = openai_codec._choice_json

    def counted(*args: Any) -> Any:
        nonlocal encoded
        encoded += 1
        return choice_json(*args)

    monkeypatch.setattr(openai_codec, "_choice_json", counted)
    app = create_app(relay)
    await relay.start()
    body = orjson.dumps({"model": "m", "temperature": 0, "messages": [{"role": "user", "content": "say hi to bob"}]})
    calls = [asyncio.ensure_future(call(app, "POST", "/v1/chat/completions", body)) for _ in range(N)]
    flights: dict[str, Flight] = relay.services.state["dedup.flights"]
    await until_all_joined(N, held.calls, flights)
    gate.set()
    out = await asyncio.gather(*calls)
    await relay.aclose()
    assert all(status == 200 for status, _, _ in out)
    return [orjson.loads(b) | {"_headers": h} for _, h, b in out], encoded, held.started


async def test_joined_callers_share_one_encode_and_get_their_own_id_and_cost(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    answers, encoded, upstream = await _joined_storm(tmp_path, monkeypatch)
    assert upstream == 1
    assert encoded == 2  # the constant part once for the payer's cost, once for the joined (0)
    ids = {a["id"] for a in answers}
    assert len(ids) == N
    for a in answers:
        assert a["id"] == "chatcmpl-" + a["_headers"]["x-llmrelay-request-id"].removeprefix("req_")
    payers = [a for a in answers if a["usage"]["cost"] > 0]
    assert len(payers) == 1
    first = payers[0]
    for a in answers:
        same = {**first, "id": a["id"], "created": a["created"], "_headers": a["_headers"],
                "usage": {**first["usage"], "cost": a["usage"]["cost"]}}
        assert a == same
        assert a["usage"]["cost"] in (0.0, first["usage"]["cost"])


async def test_the_kept_bytes_equal_encode_result_for_payer_and_joined(monkeypatch: pytest.MonkeyPatch) -> None:
    from llmrelay.types import ChatResult, Usage

    result = ChatResult(id="x1", model="echo", text="Hi bob", finish_reason="stop", usage=Usage(4, 2))
    answer = FlightAnswer()
    monkeypatch.setattr(openai_codec.time, "time", lambda: 1_700_000_000.5)
    for cost in (0.006, 0.0, 0.006, 0.0):
        for request_id in ("req_aa", "req_bb"):
            assert openai_codec.encode_hit(result, "m", request_id, cost, answer) == \
                openai_codec.encode_result(result, "m", request_id, cost)
    assert len(answer.rendered) == 2


async def test_collect_keeps_the_result_only_for_the_flights_own_chunk() -> None:
    from collections.abc import AsyncIterator
    from dataclasses import replace

    from llmrelay.context import RequestContext
    from llmrelay.types import Chunk, Usage

    flight = Flight(4)
    own = Chunk(id="x1", model="echo", text="Hi bob", finish_reason="stop", usage=Usage(4, 2))
    flight.publish(own)

    async def one(chunk: Chunk) -> AsyncIterator[Chunk]:
        yield chunk

    def joined_ctx() -> RequestContext:
        ctx = RequestContext(provider="fake")
        ctx.notes[HIT_NOTE] = flight.answer
        return ctx

    first = await _chat.collect(one(own), joined_ctx())
    assert await _chat.collect(one(own), joined_ctx()) is first
    # A layer above replaced the chunk (a redaction): collected afresh, never the kept result.
    changed = replace(own, text="Hi [REDACTED]")
    fresh = await _chat.collect(one(changed), joined_ctx())
    assert fresh is not first and fresh.text == "Hi [REDACTED]"
    assert await _chat.collect(one(changed), joined_ctx()) is not fresh


def test_a_flight_keeps_its_first_chunk_for_the_edge() -> None:
    from llmrelay.types import Chunk

    flight = Flight(4)
    assert flight.answer.chunks(False) == ()
    a, b = Chunk(text="a"), Chunk(text="b")
    flight.publish(a)
    flight.publish(b)
    assert flight.answer.chunks(False) == (a,) and flight.answer.first is a
