"""Property-based fuzzing of both edges: random JSON, wrong types and junk bytes never give a 500."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmrelay.relay import Relay
from llmrelay.server.app import Gateway, create_app

from ._asgi_client import call
from .conftest import base_config

PATHS = ("/v1/chat/completions", "/v1/messages", "/v1/messages/count_tokens", "/v1/embeddings")
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)
roles = st.sampled_from(["user", "assistant", "system", "tool", "developer", "bogus"]) | json_values
parts = st.fixed_dictionaries({"type": st.sampled_from(["text", "image_url", "image", "tool_use", "tool_result", "file", "x"])},
                              optional={"text": json_values, "image_url": json_values, "source": json_values,
                                        "input": json_values, "id": json_values, "tool_use_id": json_values,
                                        "content": json_values, "name": json_values})
messages = st.lists(st.fixed_dictionaries({"role": roles}, optional={
    "content": st.text(max_size=30) | st.lists(parts, max_size=3) | json_values,
    "tool_calls": json_values, "tool_call_id": json_values}), max_size=4) | json_values
chat_bodies = st.fixed_dictionaries({"model": st.sampled_from(["m", "nope", ""]) | json_values, "messages": messages}, optional={
    "max_tokens": json_values | st.integers(-5, 100), "stream": st.booleans() | json_values,
    "temperature": json_values, "tools": json_values, "tool_choice": json_values, "stop": json_values,
    "system": json_values, "input": json_values, "stream_options": json_values, "thinking": json_values,
    "metadata": json_values, "response_format": json_values, "n": json_values, "seed": json_values,
})


@pytest.fixture(scope="module")
def loop_and_app() -> Iterator[tuple[asyncio.AbstractEventLoop, Gateway]]:
    loop = asyncio.new_event_loop()
    app = create_app(Relay(base_config()))
    yield loop, app
    loop.run_until_complete(app.relay.aclose())
    loop.close()


def check(loop_and_app: tuple[asyncio.AbstractEventLoop, Gateway], path: str, body: bytes) -> None:
    loop, app = loop_and_app
    status, _headers, out = loop.run_until_complete(call(app, "POST", path, body))
    assert status < 500, (path, body, status, out)
    if status >= 400:
        err: Any = orjson.loads(out)
        if path.startswith("/v1/messages"):
            assert err["type"] == "error" and err["error"]["message"]
        else:
            assert err["error"]["message"]
    assert b"Traceback" not in out


@FUZZ
@given(path=st.sampled_from(PATHS), body=st.binary(max_size=200))
def test_junk_bytes(loop_and_app: tuple[asyncio.AbstractEventLoop, Gateway], path: str, body: bytes) -> None:
    check(loop_and_app, path, body)


@FUZZ
@given(path=st.sampled_from(PATHS), value=json_values)
def test_random_json(loop_and_app: tuple[asyncio.AbstractEventLoop, Gateway], path: str, value: Any) -> None:
    check(loop_and_app, path, orjson.dumps(value))


# Many of these reach the full pipeline, so fewer examples keep the suite fast.
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(PATHS), body=chat_bodies)
def test_chat_shaped_bodies(loop_and_app: tuple[asyncio.AbstractEventLoop, Gateway], path: str, body: Any) -> None:
    check(loop_and_app, path, orjson.dumps(body))
