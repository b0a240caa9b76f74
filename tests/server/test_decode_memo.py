"""server/decode_memo.py: a body sent again decodes to what decode_chat makes of it, and the shared
request and parsed body cannot be changed in place (a change would reach the next caller)."""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

import orjson
import pytest

from llmrelay.caching.request_key import request_key
from llmrelay.errors import InvalidRequestError
from llmrelay.providers.openai_passthrough import forwarded_body
from llmrelay.providers.openai_wire import WireOptions
from llmrelay.server.decode_memo import DecodeMemo, FrozenDict, FrozenList, frozen
from llmrelay.server.openai_codec import decode_chat, include_usage
from llmrelay.types import RawBody

from ._asgi_client import call
from .test_fast_path import ANSWER, _gateway

SIMPLE = b'{"model": "fast", "temperature": 0, "stream": true, "stream_options": {"include_usage": true},' \
         b' "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hi"},' \
         b' {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function",' \
         b' "function": {"name": "f", "arguments": "{}"}}]}, {"role": "tool", "tool_call_id": "c1", "content": "42"}]}'
# Each holds a mutable container the request would share: never remembered.
UNSHAREABLE = [
    b'{"model": "fast", "messages": [{"role": "user", "content": "hi"}], "tools": [{"type": "function",'
    b' "function": {"name": "f", "parameters": {"type": "object"}}}]}',
    b'{"model": "fast", "response_format": {"type": "json_object"}, "messages": [{"role": "user", "content": "hi"}]}',
    b'{"model": "fast", "metadata": {"team": "a"}, "messages": [{"role": "user", "content": "hi"}]}',
    b'{"model": "fast", "logit_bias": {"50256": -100}, "messages": [{"role": "user", "content": "hi"}]}',
    b'{"model": "fast", "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]}',
]


def _expected(data: bytes) -> tuple[Any, bool]:
    body = orjson.loads(data)
    return decode_chat(body), include_usage(body)


@pytest.mark.parametrize("data", [SIMPLE, *UNSHAREABLE])
def test_every_sighting_decodes_as_decode_chat_does(data: bytes) -> None:
    memo = DecodeMemo()
    want, want_usage = _expected(data)
    for _ in range(4):
        got, usage = memo.decode(data)
        assert got == want and usage == want_usage
        assert request_key(got) == request_key(want)
        assert got.raw is not None and got.raw.data == data and got.raw.parsed == orjson.loads(data)


def test_a_shareable_body_is_decoded_once_from_its_second_sighting() -> None:
    memo = DecodeMemo()
    first, _ = memo.decode(SIMPLE)
    second, _ = memo.decode(SIMPLE)
    third, _ = memo.decode(SIMPLE)
    assert first is not second  # seen once: decoded as before, nothing shared yet
    assert second is third


@pytest.mark.parametrize("data", UNSHAREABLE)
def test_a_request_holding_a_mutable_container_is_never_shared(data: bytes) -> None:
    memo = DecodeMemo()
    got = [memo.decode(data)[0] for _ in range(3)]
    assert got[1] is not got[2] and got[1].raw is not None and got[2].raw is not None
    assert got[1].raw.parsed is not got[2].raw.parsed


def test_the_shared_request_and_body_refuse_changes_in_place() -> None:
    memo = DecodeMemo()
    memo.decode(SIMPLE)
    shared, _ = memo.decode(SIMPLE)
    assert shared.raw is not None
    parsed: Any = shared.raw.parsed
    attempts = [
        lambda: shared.metadata.__setitem__("k", "v"),  # type: ignore[index]
        lambda: shared.extra.update({"k": 1}),  # type: ignore[attr-defined]
        lambda: parsed.__setitem__("model", "other"),
        lambda: parsed.pop("model"),
        lambda: parsed["messages"].append({"role": "user", "content": "x"}),
        lambda: parsed["messages"][0].__setitem__("content", "leaked"),
        lambda: parsed["messages"][2]["tool_calls"][0]["function"].update({"arguments": "x"}),
        lambda: parsed["stream_options"].clear(),
    ]
    for attempt in attempts:
        with pytest.raises(TypeError):
            attempt()
    again, _ = memo.decode(SIMPLE)
    assert again == _expected(SIMPLE)[0] and again.raw is not None
    assert again.raw.parsed == orjson.loads(SIMPLE)


def test_a_layer_changes_the_shared_request_by_replacing_it() -> None:
    memo = DecodeMemo()
    memo.decode(SIMPLE)
    shared, _ = memo.decode(SIMPLE)
    changed = replace(shared, temperature=1.0, metadata={"tag": "x"})
    changed.metadata["more"] = "y"  # type: ignore[index]  # the copy is the layer's own
    assert changed.raw is None  # a changed request is never forwarded as the caller's bytes
    assert memo.decode(SIMPLE)[0].temperature == 0 and not memo.decode(SIMPLE)[0].metadata


def test_frozen_copies_read_and_encode_as_the_parsed_json() -> None:
    body = orjson.loads(SIMPLE)
    shared = frozen(copy.deepcopy(body))
    assert isinstance(shared, FrozenDict) and isinstance(shared["messages"], FrozenList)
    assert shared == body and orjson.dumps(shared) == orjson.dumps(body)
    assert orjson.dumps({**shared, "model": "m"}) == orjson.dumps({**body, "model": "m"})


def test_the_pass_through_adapter_forwards_the_shared_body_as_a_fresh_one() -> None:
    memo = DecodeMemo()
    memo.decode(SIMPLE)
    shared, _ = memo.decode(SIMPLE)
    fresh = _expected(SIMPLE)[0]
    fresh.attach_raw(RawBody(SIMPLE, orjson.loads(SIMPLE)))
    opts = WireOptions()
    for model in ("fast", "gpt-4o-mini"):
        assert forwarded_body(shared.with_model(model), stream=True, opts=opts) == \
            forwarded_body(fresh.with_model(model), stream=True, opts=opts)


def test_bounded_and_cleared_when_full() -> None:
    memo = DecodeMemo(max_bodies=4)
    bodies = [b'{"model": "fast", "messages": [{"role": "user", "content": "q%d"}]}' % i for i in range(9)]
    for data in bodies:
        memo.decode(data)
        assert len(memo) <= 4
    big = DecodeMemo(max_body=16)
    for _ in range(3):
        big.decode(bodies[0])
    assert len(big) == 0


@pytest.mark.parametrize("data", [b"{", b"[1]", b'{"model": "fast"}', b'{"model": "", "messages": []}'])
def test_bad_bodies_are_refused_on_every_sighting(data: bytes) -> None:
    memo = DecodeMemo()
    for _ in range(3):
        with pytest.raises(InvalidRequestError):
            memo.decode(data)


async def test_through_the_edge_repeated_bodies_answer_and_forward_the_callers_bytes() -> None:
    app, upstream = _gateway()
    body = b'{"model": "fast", "temperature": 0.3, "messages": [{"role": "user", "content": "Say hi"}]}'
    for _ in range(3):
        status, _, out = await call(app, "POST", "/v1/chat/completions", body)
        assert status == 200, out
        assert orjson.loads(out)["choices"][0]["message"]["content"] == ANSWER["choices"][0]["message"]["content"]
    assert [r.body for r in upstream.requests] == [body.replace(b'"fast"', b'"gpt-4o-mini"')] * 3


def test_long_bodies_with_the_same_length_and_ends_are_told_apart() -> None:
    # Over 1 KB a body is found by its length and ends, then compared whole.
    def body(middle: str) -> bytes:
        return b'{"model": "fast", "messages": [{"role": "user", "content": "' + ("x" * 1500 + middle + "y" * 1500).encode() + b'"}]}'

    one, two = body("1"), body("2")
    assert len(one) == len(two) and one[:64] == two[:64] and one[-64:] == two[-64:]
    memo = DecodeMemo()
    for _ in range(3):
        for data, digit in ((one, "1"), (two, "2"), (two, "2"), (one, "1")):
            got, _ = memo.decode(data)
            assert got.messages[0].content == "x" * 1500 + digit + "y" * 1500
            assert got.raw is not None and got.raw.data == data
    memo.decode(one)
    shared, _ = memo.decode(one)
    assert memo.decode(one)[0] is shared  # a long body repeated is still shared


def test_copies_of_the_shared_body_are_plain_and_changeable() -> None:
    import pickle

    memo = DecodeMemo()
    memo.decode(SIMPLE)
    shared, _ = memo.decode(SIMPLE)
    assert shared.raw is not None
    parsed: Any = shared.raw.parsed
    for made, deep in ((copy.copy(parsed), False), (copy.deepcopy(parsed), True),
                       (pickle.loads(pickle.dumps(parsed)), True)):
        assert made == orjson.loads(SIMPLE)
        made["model"] = "changed"
        if deep:  # a shallow copy shares the (read-only) messages, as any shallow copy would
            made["messages"].append({"role": "user", "content": "more"})
    deep = copy.deepcopy(parsed)
    assert type(deep) is dict and type(deep["messages"]) is list and type(deep["messages"][0]) is dict
    assert copy.deepcopy(shared) == shared  # a copied request equals the shared one
    assert parsed == orjson.loads(SIMPLE)  # none of the copies' changes reached it
