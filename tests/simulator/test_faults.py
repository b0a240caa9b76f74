"""Each fault kind does what it says, on the wire, as a real client sees it."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import httpx
import ollama
import openai
import orjson
import pytest
from tests.conftest import eventually

from llmrelay.simulator import Simulator, serve_in_thread

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Tell me about rivers"}],
        "stream": True, "stream_options": {"include_usage": True}}
OPENAI = "/openai/v1/chat/completions"


def data_lines(text: str) -> list[str]:
    return [line[6:] for line in text.split("\n") if line.startswith("data: ")]


def stream_events(http: httpx.Client, url: str, fault: str, body: dict[str, object] = CHAT) -> tuple[list[str], Exception | None]:
    """The SSE data lines received before the stream ended or failed, and the failure."""
    received, error = [], None
    buffer = ""
    try:
        with http.stream("POST", url + OPENAI, json=body, headers={"x-sim-fault": fault}, timeout=10) as r:
            for piece in r.iter_text():
                buffer += piece
    except httpx.HTTPError as exc:
        error = exc
    received = data_lines(buffer)
    return received, error


def test_drop_cuts_the_connection_mid_stream(sim_url: str, http: httpx.Client) -> None:
    full, ok = stream_events(http, sim_url, "none")
    assert ok is None and full[-1] == "[DONE]"
    cut, error = stream_events(http, sim_url, "drop,after=3")
    assert isinstance(error, httpx.RemoteProtocolError)  # incomplete chunked body, not a clean end
    assert [_untimed(e) for e in cut] == [_untimed(e) for e in full[:3]]


def _untimed(event: str) -> object:
    obj = orjson.loads(event)
    obj.pop("created")
    return obj


def test_drop_is_an_incomplete_stream_for_the_sdks(sim_url: str) -> None:
    client = openai.OpenAI(base_url=f"{sim_url}/openai/v1", api_key="k", max_retries=0)
    seen: list[str] = []
    with pytest.raises((httpx.RemoteProtocolError, openai.APIConnectionError)):
        for chunk in client.chat.completions.create(
            model="gpt-4o-mini+fault=drop,after=4", messages=CHAT["messages"], stream=True  # type: ignore[arg-type]
        ):
            seen.append(chunk.choices[0].finish_reason or "")
    assert len(seen) == 4 and "stop" not in seen
    local = ollama.Client(host=f"{sim_url}/ollama")
    with pytest.raises(httpx.RemoteProtocolError):
        list(local.chat(model="llama3.2+fault=drop,after=2", messages=CHAT["messages"], stream=True))  # type: ignore[arg-type]


def test_drop_of_a_plain_body(sim_url: str, http: httpx.Client) -> None:
    with pytest.raises(httpx.RemoteProtocolError):
        http.post(sim_url + OPENAI, json={**CHAT, "stream": False}, headers={"x-sim-fault": "drop"})


def test_malformed_breaks_exactly_one_event(sim_url: str, http: httpx.Client) -> None:
    full, _ = stream_events(http, sim_url, "none")
    broken, error = stream_events(http, sim_url, "malformed,after=2")
    assert error is None and len(broken) == len(full)
    bad = []
    for i, line in enumerate(broken[:-1]):
        try:
            orjson.loads(line)
        except orjson.JSONDecodeError:
            bad.append(i)
    assert bad == [2]
    plain = http.post(sim_url + OPENAI, json={**CHAT, "stream": False}, headers={"x-sim-fault": "malformed"})
    assert plain.status_code == 200
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(plain.content)


def test_malformed_ndjson_and_gemini_sse(sim_url: str, http: httpx.Client) -> None:
    body = {"model": "llama3.2", "messages": CHAT["messages"]}
    lines = http.post(f"{sim_url}/ollama/api/chat", json=body, headers={"x-sim-fault": "malformed,after=1"}).text.splitlines()
    assert len(lines) > 2
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(lines[1])
    orjson.loads(lines[0])
    gem = http.post(f"{sim_url}/gemini/v1beta/models/g:streamGenerateContent?alt=sse", headers={
        "x-goog-api-key": "k", "x-sim-fault": "malformed,after=0"}, json={"contents": [{"parts": [{"text": "hi"}]}]})
    events = [e for e in gem.text.split("\r\n\r\n") if e.strip()]
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(data_lines(events[0].replace("\r\n", "\n"))[0])


def test_empty_body_and_stream(sim_url: str, http: httpx.Client) -> None:
    plain = http.post(sim_url + OPENAI, json={**CHAT, "stream": False}, headers={"x-sim-fault": "empty"})
    assert plain.status_code == 200 and plain.content == b""
    events, error = stream_events(http, sim_url, "empty")
    assert error is None and events == []


def test_html_error_page(sim_url: str, http: httpx.Client) -> None:
    r = http.post(sim_url + OPENAI, json=CHAT, headers={"x-sim-fault": "html"})
    assert r.status_code == 502 and r.headers["content-type"].startswith("text/html") and "<html>" in r.text
    client = openai.OpenAI(base_url=f"{sim_url}/openai/v1", api_key="k", max_retries=0)
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="m+fault=html,status=504", messages=CHAT["messages"])  # type: ignore[arg-type]


@pytest.mark.parametrize("status", [400, 500, 503, 529])
def test_status_faults_use_each_api_error_body(sim_url: str, status: int, http: httpx.Client) -> None:
    anthropic_headers = {"x-api-key": "k", "anthropic-version": "2023-06-01", "x-sim-fault": str(status)}
    a = http.post(f"{sim_url}/anthropic/v1/messages", headers=anthropic_headers,
                   json={"model": "m", "max_tokens": 5, "messages": CHAT["messages"]})
    assert a.status_code == status and a.json()["type"] == "error" and a.json()["error"]["type"]
    o = http.post(sim_url + OPENAI, json=CHAT, headers={"x-sim-fault": str(status)})
    assert o.status_code == status and o.json()["error"]["message"]


def test_openai_429_carries_reset_headers(sim_url: str, http: httpx.Client) -> None:
    r = http.post(sim_url + OPENAI, json=CHAT, headers={"x-sim-fault": "429,retry_after=2.5"})
    assert r.status_code == 429 and r.headers["retry-after"] == "2.5"
    assert r.headers["x-ratelimit-remaining-requests"] == "0" and r.headers["x-ratelimit-reset-requests"] == "2.500s"
    ok = http.post(sim_url + OPENAI, json=CHAT)
    assert int(ok.headers["x-ratelimit-remaining-requests"]) > 0


def test_bad_fault_spec_is_a_400_in_the_provider_format(sim_url: str, http: httpx.Client) -> None:
    r = http.post(sim_url + OPENAI, json=CHAT, headers={"x-sim-fault": "explode"})
    assert r.status_code == 400 and "unknown fault kind" in r.json()["error"]["message"]


def test_random_faults_are_reproducible_with_a_seed(sim_url: str, http: httpx.Client) -> None:
    def run() -> list[int]:
        http.post(f"{sim_url}/_sim/faults", json={"seed": 1234})
        body = {**CHAT, "stream": False, "model": "sim-model+fault=500,rate=0.5"}
        return [http.post(sim_url + OPENAI, json=body).status_code for _ in range(16)]

    first, second = run(), run()
    assert first == second and {200, 500} == set(first)

    def by_header(seed: str) -> list[int]:
        headers = {"x-sim-seed": seed, "x-sim-fault": "503,rate=0.5"}
        return [http.post(sim_url + OPENAI, json={**CHAT, "stream": False}, headers=headers).status_code for _ in range(12)]

    a, _, b = by_header("7"), by_header("8"), by_header("7")
    assert a == b and {200, 503} == set(a)


def test_control_endpoint_takes_a_deployment_down_and_back(sim_url: str, http: httpx.Client) -> None:
    anthropic_headers = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
    msg = {"model": "m", "max_tokens": 5, "messages": CHAT["messages"]}
    http.post(f"{sim_url}/_sim/faults", json={"route": "openai", "fault": "503"})
    assert http.post(sim_url + OPENAI, json=CHAT).status_code == 503
    assert http.post(f"{sim_url}/anthropic/v1/messages", json=msg, headers=anthropic_headers).status_code == 200
    http.post(f"{sim_url}/_sim/faults", json={"route": "anthropic", "model": "bad", "fault": "500"})
    assert http.post(f"{sim_url}/anthropic/v1/messages", json={**msg, "model": "bad"}, headers=anthropic_headers).status_code == 500
    assert http.post(f"{sim_url}/anthropic/v1/messages", json=msg, headers=anthropic_headers).status_code == 200
    listed = http.get(f"{sim_url}/_sim/faults").json()["faults"]
    assert {(f["route"], f["model"]) for f in listed} == {("openai", None), ("anthropic", "bad")}
    # A header overrides the deployment's default, so one call can still be made healthy.
    assert http.post(sim_url + OPENAI, json=CHAT, headers={"x-sim-fault": "none"}).status_code == 200
    http.post(f"{sim_url}/_sim/faults", json={"route": "openai", "fault": None})
    assert http.post(sim_url + OPENAI, json=CHAT).status_code == 200
    assert http.post(f"{sim_url}/_sim/faults", json={"route": "openai", "fault": "nonsense"}).status_code == 400


def test_stats_count_calls_per_route_and_model(sim_url: str, http: httpx.Client) -> None:
    for model in ("a", "a", "b"):
        http.post(sim_url + OPENAI, json={**CHAT, "model": model + "+words=3", "stream": False})
    http.get(f"{sim_url}/ollama/api/tags")
    stats = http.get(f"{sim_url}/_sim/stats").json()
    assert stats["routes"]["openai.chat"]["models"] == {"a": 2, "b": 1}
    assert stats["routes"]["ollama.tags"]["calls"] == 1 and stats["total"] == 4 and stats["in_flight"] == 0
    http.post(f"{sim_url}/_sim/reset")
    assert http.get(f"{sim_url}/_sim/stats").json()["total"] == 0


# ------------------------------------------------------------------------ delays, with a recorded sleep


class Gate:
    """An injected sleep that records each delay and, while closed, holds the caller (a stall)."""

    def __init__(self) -> None:
        self.delays: list[float] = []
        self.open = threading.Event()
        self.open.set()

    async def __call__(self, seconds: float) -> None:
        import asyncio

        self.delays.append(seconds)
        await asyncio.to_thread(self.open.wait, 10)


@pytest.fixture
def gated() -> Iterator[tuple[str, Simulator, Gate]]:
    gate = Gate()
    sim = Simulator(sleep=gate)
    with serve_in_thread(app=sim) as url:
        yield url, sim, gate


def test_latency_and_chunk_delay_are_applied(gated: tuple[str, Simulator, Gate], http: httpx.Client) -> None:
    url, _, gate = gated
    events, _ = stream_events(http, url, "latency=200,chunk_delay=15")
    assert gate.delays == [0.2] + [0.015] * len(events)


def test_stall_holds_the_stream_then_resumes(gated: tuple[str, Simulator, Gate], http: httpx.Client) -> None:
    url, sim, gate = gated
    gate.open.clear()
    with http.stream("POST", url + OPENAI, json=CHAT, headers={"x-sim-fault": "stall,after=2,seconds=30"}) as r:
        lines = r.iter_lines()
        got = [next(lines) for _ in range(4)]  # two events, each a data line and a blank line
        assert got[0].startswith("data: ") and got[2].startswith("data: ")
        # The server calls its sleep just after writing the second event, so the client can read
        # that event a moment before the stall is recorded: wait for it (bounded).
        eventually(lambda: gate.delays == [30.0], message=f"stall not recorded: {gate.delays}")
        assert sim.stats.snapshot()["in_flight"] == 1
        gate.open.set()
        rest = list(lines)
    assert rest[-2] == "data: [DONE]"
    # The server counts the request finished after its last byte is written, so the client can read
    # [DONE] a moment before in_flight drops: wait for it (bounded) instead of racing it.
    eventually(lambda: sim.stats.snapshot()["in_flight"] == 0, message="the stream never ended at the simulator")
