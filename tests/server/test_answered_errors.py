"""An error the client is answered with leaves no reference cycle behind: its traceback's frames
hold the request context, which holds the error, so without care every error response kept its
request (body, context, messages) alive until the collector's next full pass, which the serving
process runs rarely (``server.gc_gen0_threshold``)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import pytest

from llmrelay.context import RequestContext
from llmrelay.errors import InvalidRequestError
from llmrelay.relay import Relay
from llmrelay.testing import FakeProvider

from .conftest import base_config
from .test_after_response import drive, requests_total

HELLO = [{"role": "user", "content": "hello"}]


@pytest.fixture
def saved_garbage() -> Iterator[list[Any]]:
    """The collector off while a request runs; then one pass that keeps what it found."""
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        yield gc.garbage
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


def contexts_in_cycles(garbage: list[Any]) -> int:
    gc.collect()
    return sum(isinstance(obj, RequestContext) for obj in garbage)


@pytest.mark.parametrize("body", [
    {"model": "nope", "messages": HELLO},
    {"model": "nope", "stream": True, "messages": HELLO},
    {"model": "m", "messages": "not a list"},
], ids=["unknown model", "unknown model, streamed", "wrong type"])
async def test_a_refused_request_is_freed_without_the_collector(body: dict[str, Any], saved_garbage: list[Any]) -> None:
    relay = Relay(base_config())
    out = await drive(relay, body)
    assert out["status"] in (400, 404, 422)
    assert contexts_in_cycles(saved_garbage) == 0
    await relay.aclose()


@pytest.mark.parametrize("stream", [False, True])
async def test_an_upstream_error_is_answered_recorded_and_freed(stream: bool, saved_garbage: list[Any]) -> None:
    relay = Relay(base_config())
    fake = relay.services.providers["fake"]
    assert isinstance(fake, FakeProvider)
    fake.script([InvalidRequestError("the upstream refused this")])
    out = await drive(relay, {"model": "m", "stream": stream, "messages": HELLO})
    assert b"the upstream refused this" in out["body"]
    assert requests_total(relay, "ok") == 0.0
    assert contexts_in_cycles(saved_garbage) == 0
    await relay.aclose()
