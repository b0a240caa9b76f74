"""The chat edge runs the layers' deferred bookkeeping (ledger row, metrics, audit summary, limit
corrections) after the response's last byte, and never loses it: answered, streamed, refused,
or abandoned by the client mid-stream."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from llmrelay.relay import Relay
from llmrelay.server.app import create_app
from llmrelay.types import Message

from .conftest import base_config

CHAT = "/v1/chat/completions"


def requests_total(relay: Relay, status: str, model: str = "m", provider: str = "fake") -> float:
    value = relay.services.metrics.registry.get_sample_value(
        "llmrelay_requests_total", {"model": model, "provider": provider, "status": status})
    return value or 0.0


async def drive(relay: Relay, body: dict[str, Any], *, leave_after: int | None = None) -> dict[str, Any]:
    """One in-process request; notes the ok/refused counts at the moment the last byte was sent.
    ``leave_after``: the client disconnects after that many body messages."""
    app = create_app(relay)
    raw = orjson.dumps(body)
    scope = {"type": "http", "method": "POST", "path": CHAT, "query_string": b"", "http_version": "1.1",
             "headers": [(b"content-type", b"application/json")]}
    gone = asyncio.Event()
    out: dict[str, Any] = {"status": 0, "body": b"", "messages": 0, "at_last_byte": None}
    received = False

    async def receive() -> dict[str, Any]:
        nonlocal received
        if not received:
            received = True
            return {"type": "http.request", "body": raw, "more_body": False}
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            out["status"] = message["status"]
            return
        out["body"] += message.get("body", b"")
        out["messages"] += 1
        if leave_after is not None and out["messages"] >= leave_after:
            gone.set()
            await asyncio.sleep(0.05)  # the watcher sees the disconnect while this write "blocks"
        if not message.get("more_body", False):
            out["at_last_byte"] = (requests_total(relay, "ok"), requests_total(relay, "refused", provider=""))

    await app(scope, receive, send)
    return out


async def test_a_plain_answer_is_recorded_after_its_last_byte() -> None:
    relay = Relay(base_config())
    out = await drive(relay, {"model": "m", "messages": [{"role": "user", "content": "hello"}]})
    assert out["status"] == 200 and orjson.loads(out["body"])["choices"][0]["message"]["content"]
    assert out["at_last_byte"] == (0.0, 0.0)
    assert requests_total(relay, "ok") == 1.0
    await relay.aclose()


async def test_a_stream_is_recorded_after_its_end_event() -> None:
    relay = Relay(base_config())
    out = await drive(relay, {"model": "m", "stream": True, "messages": [{"role": "user", "content": "hello there"}]})
    assert out["status"] == 200 and out["body"].rstrip().endswith(b"data: [DONE]")
    assert out["at_last_byte"] == (0.0, 0.0)
    assert requests_total(relay, "ok") == 1.0
    await relay.aclose()


async def test_a_refusal_from_the_pipeline_is_still_recorded() -> None:
    relay = Relay(base_config())
    out = await drive(relay, {"model": "nope", "messages": [{"role": "user", "content": "hello"}]})
    assert out["status"] == 404
    assert relay.services.metrics.registry.get_sample_value(
        "llmrelay_requests_total", {"model": "nope", "provider": "", "status": "refused"}) == 1.0
    await relay.aclose()


async def test_a_client_gone_mid_stream_is_recorded_as_cancelled() -> None:
    relay = Relay(base_config())
    text = "word " * 200
    out = await drive(relay, {"model": "m", "stream": True, "messages": [{"role": "user", "content": text}]},
                      leave_after=3)
    assert out["messages"] >= 3
    assert requests_total(relay, "cancelled") == 1.0
    assert requests_total(relay, "ok") == 0.0
    await relay.aclose()


async def test_library_calls_record_at_once() -> None:
    relay = Relay(base_config())
    await relay.chat(model="m", messages=[Message.user("hello")])
    assert requests_total(relay, "ok") == 1.0
    await relay.aclose()
