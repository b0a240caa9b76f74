"""The OpenAI adapter forwards the caller's bytes only for the request the edge built (or its
with_model copy); any other change to the request drops them."""

from __future__ import annotations

from dataclasses import replace

import orjson

from llmrelay.providers.openai_passthrough import forwarded_body
from llmrelay.providers.openai_wire import WireOptions
from llmrelay.server.openai_codec import decode_chat
from llmrelay.types import ChatRequest, Message, RawBody

DATA = b'{ "model" : "alias", "messages": [{"role": "user", "content": "hi \\"model\\": x"}], "seed": 7 }'


def _request(data: bytes = DATA) -> ChatRequest:
    parsed = orjson.loads(data)
    return decode_chat(parsed).attach_raw(RawBody(data, parsed))


def test_only_the_model_value_changes() -> None:
    out = forwarded_body(_request().with_model("gpt-4.1"), stream=False, opts=WireOptions())
    assert out == DATA.replace(b'"alias"', b'"gpt-4.1"')


def test_model_with_characters_json_escapes() -> None:
    out = forwarded_body(_request().with_model('we"ird\\name'), stream=False, opts=WireOptions())
    assert out is not None and orjson.loads(out)["model"] == 'we"ird\\name'


def test_any_replace_drops_the_raw_body() -> None:
    req = _request()
    for changed in (replace(req, temperature=0.5), replace(req, messages=(Message.user("other"),)),
                    replace(req, model="gpt-4.1"), replace(req, stream=True)):
        assert changed.raw is None
        assert forwarded_body(changed, stream=changed.stream, opts=WireOptions()) is None


def test_raw_body_takes_no_part_in_equality() -> None:
    assert _request() == decode_chat(orjson.loads(DATA))


def test_stream_flag_must_match_the_call() -> None:
    assert forwarded_body(_request(), stream=True, opts=WireOptions()) is None


def test_dialect_translations_refuse_the_fast_path() -> None:
    top_k = _request(b'{"model":"a","top_k":3,"messages":[{"role":"user","content":"hi"}]}')
    assert forwarded_body(top_k, stream=False, opts=WireOptions()) is None
    assert forwarded_body(top_k, stream=False, opts=WireOptions(top_k=True)) is not None
    effort = _request(b'{"model":"a","reasoning_effort":"low","messages":[{"role":"user","content":"hi"}]}')
    assert forwarded_body(effort, stream=False, opts=WireOptions(reasoning_style="openrouter")) is None
    sampled = _request(b'{"model":"a","temperature":1,"messages":[{"role":"user","content":"hi"}]}')
    assert forwarded_body(sampled.with_model("o3"), stream=False, opts=WireOptions()) is None
    dev = _request(b'{"model":"a","messages":[{"role":"developer","content":"x"},{"role":"user","content":"hi"}]}')
    assert forwarded_body(dev, stream=False, opts=WireOptions()) is None


def test_stream_without_usage_dialect_keeps_the_body_as_sent() -> None:
    req = _request(b'{"model":"a","stream":true,"messages":[{"role":"user","content":"hi"}]}')
    assert forwarded_body(req, stream=True, opts=WireOptions(stream_usage=False)) == req.raw.data  # type: ignore[union-attr]


def test_with_model_copies_every_field_and_the_raw_body() -> None:
    from dataclasses import fields, replace

    from llmrelay.types import ChatRequest, Message, RawBody, Reasoning

    req = ChatRequest(model="fast", messages=(Message.user("Hi"),), temperature=0.5, stop=("x",), seed=3,
                      reasoning=Reasoning(effort="low"), n=2, stream=True, user="u", metadata={"a": "b"},
                      extra={"logit_bias": {}}).attach_raw(RawBody(b"{}", {}))
    new = req.with_model("gpt-4o-mini")
    assert new == replace(req, model="gpt-4o-mini") and new.raw is req.raw and req.model == "fast"
    assert all(getattr(new, f.name) is getattr(req, f.name) for f in fields(req) if f.name != "model")
