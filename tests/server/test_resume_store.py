"""ResumeStore expiry: recordings leave ``ttl_s`` after their stream ends, live ones never."""

from __future__ import annotations

from llmrelay.server.resume import ResumeStore


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_recordings_expire_in_closing_order_and_live_ones_stay() -> None:
    clock = Clock()
    store = ResumeStore(10.0, clock)
    for rid in ("a", "b", "c", "live"):
        store.open(rid, None)
    store.close("b")          # expires at 110
    clock.t = 105.0
    store.close("a")          # expires at 115
    store.close("c")
    clock.t = 110.0
    assert store.get("b") is None and store.get("a") is not None
    clock.t = 115.0
    assert store.get("a") is None and store.get("c") is None
    clock.t = 10_000.0
    assert store.get("live") is not None and len(store) == 1


def test_a_reused_id_keeps_its_new_recording() -> None:
    clock = Clock()
    store = ResumeStore(10.0, clock)
    store.open("x", None)
    store.close("x")          # the old recording's expiry: 110
    clock.t = 105.0
    fresh = store.open("x", None)
    store.close("x")          # the new one's: 115
    clock.t = 111.0
    assert store.get("x") is fresh
    clock.t = 115.0
    assert store.get("x") is None
