"""The cache/dedup key of a request that still carries the caller's bytes is remembered by those
bytes (with the edge, the model and the scope): always the key the canonical form gives, never
shared between bodies, models, edges or scopes that would key differently; bounded."""

from __future__ import annotations

from pathlib import Path

import orjson

from llmrelay.caching.backends import entry_key
from llmrelay.caching.request_key import request_key
from llmrelay.caching.service import response_cache
from llmrelay.context import RequestContext
from llmrelay.server.openai_codec import decode_chat
from llmrelay.types import ChatRequest, RawBody

from .conftest import make_relay


def _decoded(body: dict[str, object]) -> ChatRequest:
    data = orjson.dumps(body)
    parsed = orjson.loads(data)
    return decode_chat(parsed).attach_raw(RawBody(data, parsed))


def _body(text: str, **extra: object) -> dict[str, object]:
    return {"model": "m", "temperature": 0, "messages": [{"role": "user", "content": text}], **extra}


async def test_remembered_keys_are_the_canonical_keys(tmp_path: Path) -> None:
    relay = make_relay(tmp_path, cache={"scope": "key"})
    cache = response_cache(relay.services)
    cases = [_body("hi"), _body("hi", stream=True), _body("hello"), _body("hi", max_tokens=5), _body("hi", user="u")]
    for body in cases:
        for key_id in ("k1", "k2"):
            for protocol in ("openai", "library"):
                ctx = RequestContext(key_id=key_id, protocol=protocol)
                request = _decoded(body)
                expected = entry_key("m", request_key(request, "key:" + key_id))
                assert cache.key(request, ctx) == expected
                assert cache.key(_decoded(body), ctx) == expected  # the second time: from the memo
                # The router's model rewrite keeps the bytes; the model is part of the memo's key.
                moved = request.with_model("other")
                assert cache.key(moved, ctx) == entry_key("other", request_key(moved, "key:" + key_id))
    await relay.aclose()


async def test_a_changed_request_is_keyed_by_what_it_now_says(tmp_path: Path) -> None:
    from dataclasses import replace

    from llmrelay.types import Message

    relay = make_relay(tmp_path)
    cache = response_cache(relay.services)
    ctx = RequestContext(protocol="openai")
    original = _decoded(_body("my email is a@b.c"))
    cache.key(original, ctx)
    # A layer that rewrites the prompt (redaction) makes a new request without the caller's bytes.
    redacted = replace(original, messages=(Message.user("my email is [EMAIL]"),))
    assert redacted.raw is None
    assert cache.key(redacted, ctx) == entry_key("m", request_key(redacted)) != cache.key(original, ctx)
    await relay.aclose()


def test_the_memo_is_bounded_and_skips_large_bodies() -> None:
    from llmrelay.caching.key_memo import KeyMemo

    memo = KeyMemo(max_keys=4, max_body=200)
    for i in range(10):
        request = _decoded(_body(f"q{i}"))
        assert memo.key(request, "openai", "") == entry_key("m", request_key(request))
        assert len(memo) <= 4
    big = _decoded(_body("x" * 300))
    before = len(memo)
    assert memo.key(big, "openai", "") == entry_key("m", request_key(big))
    assert len(memo) == before  # not remembered


async def test_dedup_without_the_cache_keys_by_the_memo_too(tmp_path: Path) -> None:
    from llmrelay.layers.dedup import Deduplicator

    relay = make_relay(tmp_path, cache={"enabled": False})
    dedup = Deduplicator(relay.services, lambda r, c: None)  # type: ignore[arg-type, return-value]
    ctx = RequestContext(protocol="openai")
    request = _decoded(_body("hi"))
    assert dedup.key(request, ctx) == entry_key("m", request_key(request)) == dedup.key(_decoded(_body("hi")), ctx)
    assert len(dedup.keys) == 1
    await relay.aclose()
