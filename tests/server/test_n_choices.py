"""``n > 1`` at the OpenAI edge, with the official openai SDK against a running gateway: forwarded
to an OpenAI-compatible upstream (one call, all its choices back) and fanned out as n calls for
providers without native ``n`` (the fake provider and the simulated Anthropic, Gemini and Ollama
APIs), plain and streamed, with the usage (and cost) of every call."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import openai
import orjson
import pytest
from tests.conftest import serve_asgi

from llmrelay.relay import Relay
from llmrelay.server.app import create_app
from llmrelay.transport import HTTPRequest, MockResponse, MockTransport

from .conftest import Running, base_config, serve, sim_groups

PRICES = {"fake/echo": {"input_per_mtok": 100_000, "output_per_mtok": 200_000}}
ASK = [{"role": "user", "content": "one two three"}]


def client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key="k", max_retries=0, timeout=10)


@pytest.fixture(scope="module")
def gw(sim_url: str | None) -> Iterator[Running]:
    with serve(base_config(sim_url, pricing={"overrides": PRICES})) as running:
        yield running


def streamed(c: openai.OpenAI, model: str, n: int) -> tuple[dict[int, str], dict[int, str | None], Any]:
    texts: dict[int, str] = defaultdict(str)
    finish: dict[int, str | None] = {}
    usage = None
    for ch in c.chat.completions.create(model=model, messages=ASK, n=n, stream=True,  # type: ignore[call-overload]
                                        stream_options={"include_usage": True}):
        usage = ch.usage or usage
        for choice in ch.choices:
            texts[choice.index] += choice.delta.content or ""
            if choice.finish_reason:
                finish[choice.index] = choice.finish_reason
    return dict(texts), finish, usage


def test_fan_out_plain_gives_n_choices_with_every_calls_usage(gw: Running) -> None:
    single = client(gw.url).chat.completions.create(model="m", messages=ASK)  # type: ignore[arg-type]
    before = len(gw.fake.calls)
    raw = client(gw.url).chat.completions.with_raw_response.create(model="m", messages=ASK, n=3)  # type: ignore[arg-type]
    answer = raw.parse()
    assert [c.index for c in answer.choices] == [0, 1, 2]
    assert all(c.message.content == single.choices[0].message.content for c in answer.choices)
    assert all(c.finish_reason == "stop" for c in answer.choices)
    calls = gw.fake.calls[before:]
    assert len(calls) == 3 and all(r.n == 1 for r in calls)
    assert single.usage is not None and answer.usage is not None
    assert answer.usage.prompt_tokens == 3 * single.usage.prompt_tokens
    assert answer.usage.completion_tokens == 3 * single.usage.completion_tokens
    price = PRICES["fake/echo"]
    cost = (answer.usage.prompt_tokens * price["input_per_mtok"] + answer.usage.completion_tokens * price["output_per_mtok"]) / 1e6
    assert float(raw.headers["x-llmrelay-cost-usd"]) == pytest.approx(cost)


def test_fan_out_streamed_interleaves_choices(gw: Running) -> None:
    single = client(gw.url).chat.completions.create(model="m", messages=ASK)  # type: ignore[arg-type]
    texts, finish, usage = streamed(client(gw.url), "m", 2)
    assert texts == {0: single.choices[0].message.content, 1: single.choices[0].message.content}
    assert finish == {0: "stop", 1: "stop"}
    assert single.usage is not None and usage is not None
    assert usage.total_tokens == 2 * single.usage.total_tokens


def test_fan_out_through_each_simulated_provider(gw: Running) -> None:
    groups = [g for g in sim_groups(gw) if not gw.relay.deployments(g)[0][1].answers_n_natively()]
    if not groups:
        pytest.skip("the simulator is not available")
    c = client(gw.url)
    for group in groups:
        try:
            answer = c.chat.completions.create(model=group, messages=ASK, n=2)  # type: ignore[arg-type]
        except openai.NotFoundError:
            continue  # the simulator does not fake this provider's API
        assert [ch.index for ch in answer.choices] == [0, 1], group
        assert all(ch.message.content for ch in answer.choices), group
        texts, finish, usage = streamed(c, group, 2)
        assert sorted(texts) == [0, 1] and all(texts.values()), group
        assert sorted(finish) == [0, 1] and usage is not None and usage.total_tokens > 0


# --------------------------------------------------- an OpenAI-compatible upstream with native n

def _native_body(sent: dict[str, Any]) -> dict[str, Any]:
    n = sent.get("n", 1)
    choices = [{"index": i, "message": {"role": "assistant", "content": f"answer {i}", "refusal": None},
                "logprobs": None, "finish_reason": "stop"} for i in range(n)]
    return {"id": "chatcmpl-native", "object": "chat.completion", "created": 1, "model": sent["model"],
            "choices": choices, "usage": {"prompt_tokens": 9, "completion_tokens": 2 * n, "total_tokens": 9 + 2 * n}}


def _native_stream(sent: dict[str, Any]) -> bytes:
    n, head = sent.get("n", 1), {"id": "chatcmpl-native", "object": "chat.completion.chunk", "created": 1,
                                 "model": sent["model"]}
    events: list[dict[str, Any]] = []
    for i in range(n):
        events.append({**head, "choices": [{"index": i, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]})
    for word in ("answer", " "):
        for i in range(n):  # interleaved, as OpenAI sends them
            events.append({**head, "choices": [{"index": i, "delta": {"content": word}, "finish_reason": None}]})
    for i in range(n):
        events.append({**head, "choices": [{"index": i, "delta": {"content": str(i)}, "finish_reason": "stop"}]})
    events.append({**head, "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 2 * n, "total_tokens": 9 + 2 * n}})
    return b"".join(b"data: " + orjson.dumps(e) + b"\n\n" for e in events) + b"data: [DONE]\n\n"


def _upstream(request: HTTPRequest) -> MockResponse:
    if request.method == "GET":
        return MockResponse(200, {"content-type": "application/json"},
                            orjson.dumps({"object": "list", "data": [{"id": "gpt-4o-mini", "object": "model"}]}))
    sent = orjson.loads(request.body or b"{}")
    if sent.get("stream"):
        return MockResponse(200, {"content-type": "text/event-stream"}, _native_stream(sent))
    return MockResponse(200, {"content-type": "application/json"}, orjson.dumps(_native_body(sent)))


@pytest.fixture(scope="module")
def native() -> Iterator[tuple[Running, MockTransport]]:
    transport = MockTransport(_upstream)
    config = {"providers": {"up": {"kind": "openai", "base_url": "http://upstream.invalid/v1", "api_key": "x"}},
              "models": {"gpt": [{"provider": "up", "model": "gpt-4o-mini"}]}, "storage": {"url": "sqlite://:memory:"}}
    relay = Relay(config, transports={"up": transport})
    app = create_app(relay)
    with serve_asgi(app, start_timeout_s=10) as url:
        yield Running(url, relay, app), transport


def _chat_calls(transport: MockTransport) -> list[dict[str, Any]]:
    return [orjson.loads(r.body or b"{}") for r in transport.requests if r.method == "POST"]


def test_native_n_is_forwarded_once_and_every_choice_returned(native: tuple[Running, MockTransport]) -> None:
    running, transport = native
    before = len(_chat_calls(transport))
    answer = client(running.url).chat.completions.create(model="gpt", messages=ASK, n=3)  # type: ignore[arg-type]
    calls = _chat_calls(transport)[before:]
    assert len(calls) == 1 and calls[0]["n"] == 3
    assert [(c.index, c.message.content) for c in answer.choices] == [(i, f"answer {i}") for i in range(3)]
    assert answer.usage is not None and answer.usage.completion_tokens == 6


def test_native_n_streamed(native: tuple[Running, MockTransport]) -> None:
    running, transport = native
    before = len(_chat_calls(transport))
    texts, finish, usage = streamed(client(running.url), "gpt", 2)
    assert len(_chat_calls(transport)[before:]) == 1
    assert texts == {0: "answer 0", 1: "answer 1"} and finish == {0: "stop", 1: "stop"}
    assert usage is not None and usage.completion_tokens == 4
