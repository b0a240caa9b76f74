"""One ledger suite over every backend (SQLite always, PostgreSQL when its binaries exist), the
accounting layer's rows, and no lost rows when a serving process is stopped with SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from llmrelay import Message, Relay
from llmrelay.context import RequestContext
from llmrelay.cost.ledger import LedgerRow, LedgerWriter, UsageQuery, open_ledger
from llmrelay.errors import RateLimitError

from .conftest import relay_config

T0 = 1_700_000_000.0


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'l.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


async def test_store_roundtrip_rollup_and_retention(ledger_url: str) -> None:
    store = open_ledger(ledger_url)
    await store.open()
    if ledger_url.startswith("postgres"):
        await store._fetch("DELETE FROM usage_ledger", ())  # type: ignore[attr-defined]
        await store._fetch("DELETE FROM usage_daily", ())  # type: ignore[attr-defined]
    writer = LedgerWriter(store, batch_size=7, flush_s=0.01)
    writer.acquire()
    for i in range(40):
        writer.submit(LedgerRow(ts=T0 + i * 3600, request_id=f"r{i}", model=("a", "b")[i % 2], user_id="u",
                                input_tokens=10, output_tokens=i, cost_usd=0.01 * i, prompt_hash=f"h{i % 3}",
                                status="ok" if i % 5 else "error"))
    await writer.flush()
    assert await store.count() == 40
    raw = {r["model"]: r for r in await store.aggregate(UsageQuery(by=("model",)))}
    daily = {r["model"]: r for r in await store.aggregate(UsageQuery(by=("model",), days=("2000-01-01", "2100-01-01")))}
    for m in ("a", "b"):
        assert raw[m]["requests"] == daily[m]["requests"] == 20
        assert raw[m]["cost_usd"] == pytest.approx(daily[m]["cost_usd"])
        assert raw[m]["errors"] == daily[m]["errors"]
    assert sum(r["cost_usd"] for r in raw.values()) == pytest.approx(0.01 * sum(range(40)))
    reps = await store.repeated("prompt_hash", 0, 2, 10)
    assert {r["hash"] for r in reps} == {"h0", "h1", "h2"}
    assert await store.prune(T0 + 20 * 3600) == 20
    assert await store.count() == 20
    # Roll-ups outlive retention: the daily totals still count every request.
    again = await store.aggregate(UsageQuery(by=(), days=("2000-01-01", "2100-01-01")))
    assert again[0]["requests"] == 40
    await writer.aclose()


async def test_every_request_leaves_one_row(tmp_path: Path) -> None:
    async with Relay(relay_config(tmp_path)) as relay:
        fake = relay.services.providers["fake"]
        fake.script(["fine", RateLimitError("no"), RateLimitError("no"), RateLimitError("no")])  # type: ignore[attr-defined]
        ok = RequestContext(user="ann")
        await relay.chat(model="m", messages=[Message.user("hello there")], ctx=ok)
        with pytest.raises(RateLimitError):
            await relay.chat(model="m", messages=[Message.user("x")], ctx=RequestContext(user="bob"))
        fake.latency_s = 0.05  # type: ignore[attr-defined]
        started = asyncio.Event()

        async def consume() -> None:
            async for _ in relay.stream(model="m", messages=[Message.user("a long answer please")]):
                started.set()

        task = asyncio.create_task(consume())
        await started.wait()
        task.cancel()  # the client went away mid-stream (the server cancels its task)
        with pytest.raises(asyncio.CancelledError):
            await task
        await relay.services.ledger.flush()
        rows = {r["request_id"]: r for r in await relay.services.ledger.store.rows(0, None, 100)}
    assert len(rows) == 3
    row = rows[ok.request_id]
    assert row["status"] == "ok" and row["user_id"] == "ann" and ok.cost_usd > 0
    assert row["cost_usd"] == pytest.approx(ok.cost_usd)
    assert row["input_tokens"] == ok.usage.input_tokens  # type: ignore[union-attr]
    assert sorted(r["status"] for r in rows.values()) == ["cancelled", "error", "ok"]


SCRIPT = r"""
import asyncio, signal, sys
from llmrelay import Relay, Message
from llmrelay.context import RequestContext

async def main(db, done_path):
    relay = Relay({"providers": {"fake": {"kind": "fake", "options": {"latency_s": 0.002}}},
                   "models": {"m": [{"provider": "fake", "model": "echo"}]},
                   "storage": {"url": "sqlite:///" + db, "ledger_flush_s": 5, "ledger_batch_size": 100000},
                   "safety": {"level": "off"}})
    await relay.start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    done = open(done_path, "w", buffering=1)

    async def client(n):
        while not stop.is_set():
            ctx = RequestContext()
            await relay.chat(model="m", messages=[Message.user(f"hello {n}")], ctx=ctx)
            done.write(ctx.request_id + "\n")

    tasks = [asyncio.create_task(client(i)) for i in range(20)]
    print("ready", flush=True)
    await stop.wait()
    await asyncio.gather(*tasks)
    await relay.aclose()   # graceful shutdown: drains the ledger queue

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


def test_sigterm_loses_no_completed_row(tmp_path: Path) -> None:
    db, done = tmp_path / "ledger.db", tmp_path / "done.txt"
    script = tmp_path / "serve.py"
    script.write_text(SCRIPT)
    proc = subprocess.Popen([sys.executable, str(script), str(db), str(done)], stdout=subprocess.PIPE,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
    # Under load: wait for a few hundred completed requests (the 5 s flush interval keeps their
    # rows queued in memory), bounded so a stuck process fails the test instead of hanging it.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (not done.exists() or done.read_text().count("\n") < 300):
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    completed = set(done.read_text().split())
    assert len(completed) > 100
    import sqlite3

    with sqlite3.connect(db) as conn:
        stored = {r[0] for r in conn.execute("SELECT request_id FROM usage_ledger")}
    assert completed <= stored


async def test_reports_are_pages_of_the_costliest_groups(ledger_url: str) -> None:
    from llmrelay.config import Settings
    from llmrelay.cost.analytics import usage_report

    store = open_ledger(ledger_url)
    await store.open()
    # 6 users x 2 days; user u{i} spends i cents a call, so the order is known (ties on equal cost).
    rows = [LedgerRow(ts=T0 + d * 86400 + i, request_id=f"p{d}-{i}", user_id=f"u{i}", model="a",
                      cost_usd=0.01 * (i % 4), input_tokens=i) for d in range(2) for i in range(6)]
    await store.write(rows)
    q = UsageQuery(by=("day", "user_id"), days=("2023-11-14", "2023-11-15"), limit=5)
    pages = [await store.aggregate(replace(q, offset=o)) for o in (0, 5, 10)]
    seen = [(r["day"], r["user_id"]) for page in pages for r in page]
    assert [len(p) for p in pages] == [5, 5, 2] and len(set(seen)) == 12
    costs = [r["cost_usd"] for page in pages for r in page]
    assert costs == sorted(costs, reverse=True)
    assert await store.count_groups(q) == 12
    assert await store.count_groups(UsageQuery(by=("model",), days=q.days)) == 1
    rep = await usage_report(store, Settings(), since="2d", by=("user", "day"), now=T0 + 86400 + 100,
                             limit=5, offset=5, recommend=False)
    assert (rep.groups, len(rep.rows), rep.truncated) == (12, 5, True)
    assert [(r["day"], r["user_id"]) for r in rep.rows] == seen[5:10]
    with pytest.raises(ValueError, match="limit"):
        await usage_report(store, Settings(), by=("user",), limit=0)
    await store.aclose()


async def test_repeats_within_a_day_are_rolled_up(ledger_url: str) -> None:
    store = open_ledger(ledger_url)
    await store.open()
    base = {"model": "a", "provider": "p", "cost_usd": 0.5, "input_tokens": 100, "prefix_hash": "sys",
            "prefix_tokens": 40}
    # h1 three times within a day (2 repeats); h2 twice two days apart (no repeat); an error is no answer.
    spec = [("h1", 0), ("h1", 3600), ("h2", 7200), ("h1", 80000), ("h2", 7200 + 2 * 86400)]
    rows = [LedgerRow(ts=T0 + dt, request_id=f"q{i}", prompt_hash=h, **base) for i, (h, dt) in enumerate(spec)]
    await store.write(rows[:2])
    await store.write([*rows[2:], LedgerRow(ts=T0 + 9000, request_id="qe", prompt_hash="h2", status="error", **base)])
    got = await store.repeated("prompt_hash", T0, 2, 10)
    assert [(r["hash"], r["n"], r["repeats"]) for r in got] == [("h1", 3, 2)]
    assert got[0]["cost_usd"] == pytest.approx(1.0) and got[0]["input_tokens"] == 200
    prefixes = await store.repeated("prefix_hash", T0, 3, 10)
    # Every answered request shares the prefix; the one two days after the last is not a repeat.
    assert [(r["hash"], r["repeats"], r["prefix_tokens"]) for r in prefixes] == [("sys", 3, 40)]
    await store.aclose()


async def test_a_backlog_is_written_in_catch_up_batches(tmp_path: Path) -> None:
    """More than one batch queued: one write takes up to CATCH_UP batches, in order; one batch
    or less is written as before."""
    from llmrelay.cost.ledger import CATCH_UP

    store = open_ledger(f"sqlite:///{tmp_path / 'l.db'}")
    await store.open()
    sizes: list[int] = []
    write = store.write

    async def recording(rows: Any) -> None:
        sizes.append(len(rows))
        await write(rows)

    store.write = recording  # type: ignore[method-assign]
    writer = LedgerWriter(store, batch_size=10, flush_s=60)
    writer.acquire()
    total = 10 * CATCH_UP + 25
    for i in range(total):
        writer._queue.append(LedgerRow(ts=T0 + i, request_id=f"r{i}"))  # queued while the writer was busy
    await writer.flush()
    assert sizes == [10 * CATCH_UP, 25]  # the rest (still over one batch) in one catch-up write
    for i in range(total, total + 7):
        writer._queue.append(LedgerRow(ts=T0 + i, request_id=f"r{i}"))
    await writer.flush()
    assert sizes[2:] == [7]
    rows = await store.rows(T0, None, total + 8)
    assert sorted(int(r["request_id"][1:]) for r in rows) == list(range(total + 7))
    await writer.aclose()
