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


def _event(n: int) -> bytes:
    return b"data: " + b"x" * n + b"\n\n"


def test_total_bytes_are_bounded_oldest_recordings_go_first() -> None:
    store = ResumeStore(10.0, Clock(), max_bytes=1000)
    recs = {rid: store.open(rid, None) for rid in ("a", "b", "c")}
    for rid in ("a", "b", "c"):
        store.add(recs[rid], _event(300))
    assert store.bytes == sum(r.size for r in recs.values()) <= 1000
    store.add(recs["c"], _event(300))     # over the total: "a" (the oldest) is evicted
    assert store.get("a") is None and recs["a"].truncated and recs["a"].events == []
    assert store.get("b") is recs["b"] and store.get("c") is recs["c"]
    assert store.bytes == recs["b"].size + recs["c"].size <= 1000


def test_expired_and_replaced_recordings_give_their_bytes_back() -> None:
    clock = Clock()
    store = ResumeStore(10.0, clock)
    rec = store.open("x", None)
    store.add(rec, _event(100))
    store.open("x", None)                 # a reused id: the old recording is released
    assert store.bytes == 0 and rec.truncated
    fresh = store.get("x")
    assert fresh is not None
    store.add(fresh, _event(50))
    store.close("x")
    clock.t = 200.0
    assert store.get("x") is None and store.bytes == 0


def test_a_stream_over_the_per_stream_limit_is_freed() -> None:
    from llmrelay.server import resume

    store = ResumeStore(10.0, Clock())
    rec = store.open("big", None)
    while not rec.truncated:
        store.add(rec, _event(64 * 1024))
    assert rec.events == [] and store.bytes == 0 and store.get("big") is rec
    assert rec.size == 0 < resume.MAX_STREAM_BYTES


def test_expiry_entries_stay_bounded_by_what_is_held() -> None:
    """Many more streams than MAX_STREAMS within one ttl: the recordings are capped, and so are
    their expiry entries (they were kept per stream for the whole ttl); expiry still works."""
    from llmrelay.server.resume import MAX_STREAMS

    clock = Clock()
    store = ResumeStore(300.0, clock)
    for i in range(10 * MAX_STREAMS):
        store.open(f"r{i}", None)
        store.close(f"r{i}")
        clock.t += 0.001
    assert len(store) == MAX_STREAMS
    assert len(store._expiries) <= 2 * MAX_STREAMS
    last = f"r{10 * MAX_STREAMS - 1}"
    assert store.get(last) is not None and store.get("r0") is None
    clock.t += 300.0
    assert store.get(last) is None and len(store) == 0 and not store._expiries
