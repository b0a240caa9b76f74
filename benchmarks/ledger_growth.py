"""Per-row cost of the ledger's batch write as its table grows (issue #11).

    python benchmarks/ledger_growth.py [--rows 200000] [--db /tmp/ledger-growth.db | --memory]
    python benchmarks/ledger_growth.py --breakdown          # each statement of a batch on its own

Writes ``--rows`` gateway-like rows through the real :class:`LedgerWriter` (batches of 500, the
writer's default) into a fresh SQLite ledger and prints, at 0, 50k, 100k, 150k and 200k rows, the
median per-row cost of the 20 batches written from there: wall time of the batch and the process's
CPU time (the writer thread's work plus the row preparation on the loop). Rows are what the
gateway writes: random 96-bit request ids, 12-byte blake2b prompt hashes (mostly unique), a few
shared prefix hashes, 2,000 users on 200 keys and 20 teams, half the requests in one of 200
conversations going on (each ~20 requests long), 20 requests/s.

``--breakdown`` runs the same batches through the same SQL with a CPU timer around each statement
(the row insert, each roll-up's upsert, the last-seen lookup and upsert, the repeats upsert), and
``--indexes`` adds the cost of each ledger index alone (a narrow table per index, same keys).
``--ab`` writes the same batches, in turn, into a ledger with the indexes migration 6 dropped (A)
and one without (B), in one process (the fair comparison on a machine whose load changes).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from llmrelay.cost import ledger_repeats as rp
from llmrelay.cost import ledger_sql as q
from llmrelay.cost.ledger import LedgerRow, LedgerWriter
from llmrelay.cost.ledger_sqlite import SQLiteLedger
from llmrelay.stores.migrate import upgrade
from llmrelay.stores.migrations import MIGRATIONS

NOW = 1_767_225_600.0  # 2026-01-01
BATCH = 500
CHECKPOINTS = (0, 50_000, 100_000, 150_000, 200_000)
WINDOW = 20  # batches measured from each checkpoint


def gateway_rows(n: int, seed: int = 11) -> Iterator[LedgerRow]:
    rnd = random.Random(seed)
    models = [f"model-{i}" for i in range(12)]
    again: list[str] = []
    sessions = [f"s-{rnd.getrandbits(64):016x}" for _ in range(200)]  # conversations going on
    for i in range(n):
        user = rnd.randrange(2000)
        session = None
        if rnd.random() < 0.5:  # half the requests name a session; a session lasts ~20 of them
            at = rnd.randrange(len(sessions))
            if rnd.random() < 0.05:
                sessions[at] = f"s-{rnd.getrandbits(64):016x}"
            session = sessions[at]
        if again and rnd.random() < 0.1:  # one request in ten repeats a recent prompt
            prompt = rnd.choice(again)
        else:
            prompt = f"{rnd.getrandbits(96):024x}"
            again = [*again[-499:], prompt]
        yield LedgerRow(
            ts=NOW + i / 20, request_id=f"req_{rnd.getrandbits(96):024x}", key_id=f"key-{user % 200}",
            user_id=f"user-{user}", team=f"team-{user % 20}", session=session,
            model_group=rnd.choice(("fast", "smart")), provider=rnd.choice(("p1", "p2", "p3")),
            model=rnd.choice(models), input_tokens=rnd.randrange(50, 4000), output_tokens=rnd.randrange(1, 800),
            cost_usd=rnd.random() / 100, latency_ms=rnd.random() * 2000, ttft_ms=rnd.random() * 500,
            status="ok" if rnd.random() > 0.02 else "error", prompt_hash=prompt,
            prefix_hash=f"{rnd.randrange(40):024x}", prefix_tokens=rnd.choice((300, 1200)))


def batches(n: int) -> Iterator[list[LedgerRow]]:
    batch: list[LedgerRow] = []
    for row in gateway_rows(n):
        batch.append(row)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _at_checkpoints(costs: list[tuple[float, ...]], rows: int) -> list[tuple[int, tuple[float, ...]]]:
    """Per checkpoint, the median of each measure over the WINDOW batches from it (us per row)."""
    out = []
    for cp in (c for c in CHECKPOINTS if c <= rows):
        first = min(cp, rows - WINDOW * BATCH) // BATCH
        window = costs[first:first + WINDOW]
        if window:
            out.append((cp, tuple(statistics.median(c[i] for c in window) * 1e6 / BATCH
                                  for i in range(len(window[0])))))
    return out


async def gateway_ledger(url: str) -> SQLiteLedger:
    """The ledger as a gateway opens it: the schema migrated first (a file), or for a database in
    memory (one connection: the ledger's own) every migration's index statements run on it."""
    if "memory" not in url:
        await upgrade(url)
    ledger = SQLiteLedger(url)
    await ledger.open()
    if "memory" in url:
        stmts = [s for m in MIGRATIONS for s in m.sqlite if re.match(r"(CREATE|DROP) INDEX", s) and " usage_" in s]
        await ledger._call(lambda conn: [conn.execute(s) for s in stmts])
    return ledger


async def through_writer(url: str, rows: int) -> list[tuple[int, tuple[float, ...]]]:
    """Wall and CPU seconds of each batch written by the real writer."""
    writer = LedgerWriter(await gateway_ledger(url), batch_size=BATCH, flush_s=3600)
    writer.acquire()
    await writer.start()
    costs: list[tuple[float, ...]] = []
    for batch in batches(rows):
        for row in batch:
            writer.submit(row)
        wall, cpu = time.perf_counter(), time.process_time()
        await writer.flush()
        costs.append((time.perf_counter() - wall, time.process_time() - cpu))
    await writer.aclose()
    return _at_checkpoints(costs, rows)


# The usage_ledger indexes migration 6 dropped, as migration 1 made them: ``--ab`` puts them back
# on side A to compare the schema before and after in one process.
DROPPED = tuple(stmt for stmt in MIGRATIONS[0].sqlite
                if any(f"EXISTS {name} ON" in stmt for name in ("usage_request", "usage_prompt", "usage_prefix")))


async def interleaved(url_a: str, url_b: str, rows: int) -> list[tuple[int, tuple[float, ...]]]:
    """A (the indexes before migration 6) and B (now) written batch by batch in turn, in one
    process, so the machine's changing load falls on both alike: each batch's CPU seconds."""
    sides = [await gateway_ledger(url_a), await gateway_ledger(url_b)]
    await sides[0]._call(lambda conn: [conn.execute(stmt) for stmt in DROPPED])
    writers = [LedgerWriter(ledger, batch_size=BATCH, flush_s=3600) for ledger in sides]
    for w in writers:
        w.acquire()
        await w.start()
    costs: list[tuple[float, ...]] = []
    for n, batch in enumerate(batches(rows)):
        cpu = [0.0, 0.0]
        for side in ((0, 1) if n % 2 else (1, 0)):  # who goes first alternates too
            for row in batch:
                writers[side].submit(row)
            t = time.process_time()
            await writers[side].flush()
            cpu[side] = time.process_time() - t
        costs.append((cpu[0], cpu[1]))
    for w in writers:
        await w.aclose()
    return _at_checkpoints(costs, rows)


def _timed(steps: dict[str, float], name: str, fn: Callable[..., Any], *args: Any) -> None:
    # The thread's CPU time: what the statement costs the gateway's host, not what others' load
    # makes it wait (on a file, the commit's fsync waits are thus not counted).
    t = time.thread_time()
    fn(*args)
    steps[name] = steps.get(name, 0.0) + time.thread_time() - t


def _breakdown_batch(conn: sqlite3.Connection, ledger: SQLiteLedger, rows: list[LedgerRow]) -> dict[str, float]:
    """The statements of ``SQLiteLedger.write``, each timed (same SQL, same order)."""
    values = q.row_values(rows, "UTC")
    rollups = q.rollups_of(values)
    hashes = rp.hashes_of(values)
    steps: dict[str, float] = {}
    conn.execute("BEGIN")
    _timed(steps, "insert rows", conn.executemany, q.INSERT_ROW, values)
    for table, rows_ in rollups.items():
        _timed(steps, "roll-up " + table, conn.executemany, q.UPSERTS[table], rows_)
    last: dict[rp.Key, float] = {}

    def lookup() -> None:
        for i in range(0, len(hashes), rp.LOOKUP_CHUNK):
            chunk = hashes[i:i + rp.LOOKUP_CHUNK]
            for h, kind, model, provider, ts in conn.execute(rp.lookup_sql(len(chunk)), chunk):
                last[(h, kind, model, provider)] = ts

    _timed(steps, "seen lookup", lookup)
    seen, repeats = rp.batch_repeats(values, last, ledger.repeat_window_s)
    _timed(steps, "seen upsert", conn.executemany, rp.UPSERT_SEEN, seen)
    _timed(steps, "repeats upsert", conn.executemany, rp.UPSERT_REPEATS, repeats)
    _timed(steps, "commit", conn.execute, "COMMIT")
    return steps


def _index_tables(conn: sqlite3.Connection) -> list[tuple[str, str, str]]:
    """(index, its narrow table, the insert) for each index of usage_ledger."""
    out = []
    for name, sql in conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' "
                                  "AND tbl_name = 'usage_ledger' AND sql IS NOT NULL"):
        cols = sql[sql.index("(") + 1:sql.rindex(")")]
        table = f"bench_{name}"
        conn.execute(f"CREATE TABLE IF NOT EXISTS {table} ({cols})")
        conn.execute(f"CREATE INDEX IF NOT EXISTS {table}_i ON {table} ({cols})")
        out.append((name, table, cols))
    return out


def breakdown(url: str, rows: int, indexes: bool, pragmas: tuple[str, ...] = ()) -> None:
    async def open_() -> tuple[SQLiteLedger, sqlite3.Connection]:
        ledger = await gateway_ledger(url)
        assert ledger._conn is not None
        return ledger, ledger._conn

    ledger, conn = asyncio.run(open_())
    for pragma in pragmas:
        conn.execute(f"PRAGMA {pragma}")
    narrow = _index_tables(conn) if indexes else []
    pos = {c: i for i, c in enumerate(q.ROW_COLUMNS)}
    per_batch: list[dict[str, float]] = []
    for batch in batches(rows):
        steps = _breakdown_batch(conn, ledger, batch)
        values = q.row_values(batch, "UTC")
        for name, table, cols in narrow:
            at = [pos[c.strip()] for c in cols.split(",")]
            data = [tuple(v[i] for i in at) for v in values]
            marks = ", ".join("?" * len(at))
            _timed(steps, f"index {name} alone", conn.executemany, f"INSERT INTO {table} VALUES ({marks})", data)
        per_batch.append(steps)
    names = list(per_batch[0])
    table_ = _at_checkpoints([tuple(s.get(n, 0.0) for n in names) for s in per_batch], rows)
    # Medians per window hide a cost paid every few batches (a WAL checkpoint): the last column is
    # the mean over every batch from 50k rows on (all of them for a shorter run).
    late = per_batch[min(len(per_batch) - 1, 50_000 // BATCH):]
    mean = [statistics.fmean(s.get(n, 0.0) for s in late) * 1e6 / BATCH for n in names]
    print(f"{'us per row':34}" + "".join(f"{cp:>9,}" for cp, _ in table_) + f"{'mean 50k+':>10}")
    for i, n in enumerate(names):
        print(f"{n:34}" + "".join(f"{v[i]:9.2f}" for _, v in table_) + f"{mean[i]:10.2f}")
    print(f"{'total':34}" + "".join(f"{sum(v):9.2f}" for _, v in table_) + f"{sum(mean):10.2f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--db", type=Path, default=None, help="a file (default: a fresh temporary file)")
    ap.add_argument("--memory", action="store_true", help="an in-memory database")
    ap.add_argument("--breakdown", action="store_true", help="time each statement of a batch")
    ap.add_argument("--indexes", action="store_true", help="with --breakdown: each index alone too")
    ap.add_argument("--pragma", action="append", default=[], help="with --breakdown: a PRAGMA run on the "
                                                                     "connection first (name=value), repeatable")
    ap.add_argument("--ab", action="store_true", help="the indexes before migration 6 (A) and now (B), "
                                                      "batches in turn in one process")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.db or Path(tmp) / "ledger.db"
        if args.db is not None and args.db.exists():
            raise SystemExit(f"{args.db} exists: the benchmark needs a fresh ledger")
        url = "sqlite://:memory:" if args.memory else f"sqlite:///{path}"
        print(f"{args.rows:,} rows into {'memory' if args.memory else path}, batches of {BATCH}")
        if args.ab:
            url_b = "sqlite://:memory:" if args.memory else f"sqlite:///{Path(tmp) / 'b.db'}"
            print(f"{'rows in table':>14} {'A cpu us/row':>13} {'B cpu us/row':>13} {'B - A':>7}")
            for cp, (a, b) in asyncio.run(interleaved(url, url_b, args.rows)):
                print(f"{cp:>14,} {a:13.2f} {b:13.2f} {(b - a) / a:+7.0%}")
            return
        if args.breakdown:
            breakdown(url, args.rows, args.indexes, tuple(args.pragma))
            return
        print(f"{'rows in table':>14} {'wall us/row':>12} {'cpu us/row':>11}")
        for cp, (wall, cpu) in asyncio.run(through_writer(url, args.rows)):
            print(f"{cp:>14,} {wall:12.2f} {cpu:11.2f}")


if __name__ == "__main__":
    main()
