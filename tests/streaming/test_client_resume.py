"""Client resume over a real running gateway: ``GET /v1/streams/{request_id}`` (server/resume.py).

A client reads part of a stream, drops the connection, and reconnects with the last SSE id it got
(``?last_event_id=N`` or ``Last-Event-ID``): it gets exactly the rest, so what it read before plus
the resumed part is the whole stream, event for event, and assembles to the same answer as an
uninterrupted call. Only the key that made the request can resume it; unknown ids are 404; a
recording is gone ``server.stream_resume_ttl_s`` after its stream ended (the relay's clock is a
``ManualClock`` here, so expiry needs no waiting).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from llmrelay import Relay
from llmrelay.clock import ManualClock
from llmrelay.server.resume import STATE_KEY, ResumeStore

from .conftest import serve

MASTER = "sk-master-resume-0123456789"
TTL = 60.0
BODY = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "tell me a long story " * 60}]}


@dataclass
class Gateway:
    url: str
    relay: Relay
    clock: ManualClock
    keys: tuple[str, str]

    def auth(self, key: str) -> dict[str, str]:
        return {"authorization": f"Bearer {key}"}

    @property
    def store(self) -> ResumeStore:
        store = self.relay.services.state[STATE_KEY]
        assert isinstance(store, ResumeStore)
        return store


@pytest.fixture(scope="module")
def gateway() -> Iterator[Gateway]:
    clock = ManualClock()
    relay = Relay({
        "providers": {"fake": {"kind": "fake", "options": {"chunk_size": 8}}},
        "models": {"m": [{"provider": "fake", "model": "echo"}]},
        "storage": {"url": "sqlite://:memory:"},
        "server": {"master_key": MASTER, "stream_resume_ttl_s": TTL},
    }, clock=clock)
    with serve(relay) as url:
        keys = []
        for name in ("alice", "bob"):
            r = httpx.post(f"{url}/admin/keys", json={"name": name}, headers={"authorization": f"Bearer {MASTER}"})
            assert r.status_code in (200, 201), r.text
            keys.append(r.json()["key"])
        yield Gateway(url, relay, clock, (keys[0], keys[1]))


def _events(lines: Iterator[str]) -> Iterator[tuple[int, str]]:
    """(id, data) for each SSE event."""
    event_id, data = None, None
    for line in lines:
        if line.startswith("id: "):
            event_id = int(line[4:])
        elif line.startswith("data: "):
            data = line[6:]
        elif line == "" and data is not None:
            assert event_id is not None, "an event without an id while resume is on"
            yield event_id, data
            event_id, data = None, None


def _text(events: list[tuple[int, str]]) -> tuple[str, str | None]:
    """The assembled text and finish reason of OpenAI chunk events."""
    text, finish = [], None
    for _, data in events:
        if data == "[DONE]":
            continue
        for choice in json.loads(data)["choices"]:
            text.append(choice["delta"].get("content") or "")
            finish = choice.get("finish_reason") or finish
    return "".join(text), finish


def _read_part(gw: Gateway, key: str, n: int) -> tuple[str, list[tuple[int, str]]]:
    """Start a stream, read ``n`` events, then drop the connection; the request id and the events."""
    with httpx.Client(timeout=10) as client, client.stream(
            "POST", gw.url + "/v1/chat/completions", json=BODY, headers=gw.auth(key)) as r:
        assert r.status_code == 200
        rid = r.headers["x-llmrelay-request-id"]
        got = []
        for event in _events(r.iter_lines()):
            got.append(event)
            if len(got) == n:
                break
        # The drop cancels the answer at the gateway, so wait until it was all produced (this test
        # is about what the client missed in transit, not about answers cut short).
        _wait_done(gw, rid)
    return rid, got


def _wait_done(gw: Gateway, rid: str) -> None:
    deadline = time.monotonic() + 5
    while True:
        rec = gw.store.get(rid)
        if rec is not None and rec.done:
            return
        assert time.monotonic() < deadline, "the stream did not finish at the gateway"
        time.sleep(0.01)


def _resume(gw: Gateway, rid: str, key: str, *, query: int | None = None,
            header: int | None = None) -> httpx.Response:
    params = {"last_event_id": str(query)} if query is not None else None
    headers = gw.auth(key) | ({"last-event-id": str(header)} if header is not None else {})
    return httpx.get(f"{gw.url}/v1/streams/{rid}", params=params, headers=headers, timeout=10)


def _uninterrupted(gw: Gateway, key: str) -> list[tuple[int, str]]:
    with httpx.Client(timeout=10) as client, client.stream(
            "POST", gw.url + "/v1/chat/completions", json=BODY, headers=gw.auth(key)) as r:
        return list(_events(r.iter_lines()))


@pytest.mark.parametrize("how", ["query", "header"])
def test_a_dropped_client_resumes_with_exactly_the_rest(gateway: Gateway, how: str) -> None:
    alice = gateway.keys[0]
    rid, first = _read_part(gateway, alice, 3)
    assert [i for i, _ in first] == [1, 2, 3]
    last = first[-1][0]
    r = _resume(gateway, rid, alice, **({"query": last} if how == "query" else {"header": last}))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/event-stream")
    rest = list(_events(iter(r.text.split("\n"))))
    whole = first + rest
    assert [i for i, _ in whole] == list(range(1, len(whole) + 1))  # nothing lost, nothing repeated
    assert len(rest) > 3 and whole[-1][1] == "[DONE]"
    # The same events the gateway sent (a replay from the start), and the same answer as a call
    # that was never interrupted.
    replay = list(_events(iter(_resume(gateway, rid, alice, query=0).text.split("\n"))))
    assert replay == whole
    text, finish = _text(whole)
    assert (text, finish) == _text(_uninterrupted(gateway, alice))
    assert len(text) > 50 and finish == "stop"


def test_only_the_key_that_asked_can_resume(gateway: Gateway) -> None:
    alice, bob = gateway.keys
    rid, _ = _read_part(gateway, alice, 2)
    r = _resume(gateway, rid, bob, query=2)
    assert r.status_code == 404 and r.json()["error"]["message"]
    assert httpx.get(f"{gateway.url}/v1/streams/{rid}").status_code == 401  # no key at all
    assert _resume(gateway, rid, alice, query=2).status_code == 200


def test_unknown_ids_and_bad_positions(gateway: Gateway) -> None:
    alice = gateway.keys[0]
    assert _resume(gateway, "req_doesnotexist", alice).status_code == 404
    rid, _ = _read_part(gateway, alice, 1)
    assert _resume(gateway, rid, alice, query="x").status_code == 400  # type: ignore[arg-type]
    # Past the end: nothing more to send, the stream is over.
    assert _resume(gateway, rid, alice, query=10_000).text == ""


def test_recordings_expire_after_the_ttl(gateway: Gateway) -> None:
    alice = gateway.keys[0]
    rid, _ = _read_part(gateway, alice, 1)
    gateway.clock.advance(TTL - 1)
    assert _resume(gateway, rid, alice, query=1).status_code == 200
    gateway.clock.advance(2)
    assert _resume(gateway, rid, alice, query=1).status_code == 404
    assert gateway.store.get(rid) is None
