"""The batched ledger write leaves exactly what a plain row-by-row reference leaves: every raw row,
every roll-up of every grain, every last-seen time and repeat (SQLite and PostgreSQL).

The reference upserts each row on its own into each of the twelve roll-ups (its own day, week and
month labels), and looks up and upserts each row's prompt and prefix in ``usage_prompts_seen``;
the store under test folds a batch first (one upsert per distinct key, one lookup per batch).
Whole-number columns must be equal; money and latency sums are added in another order, so they are
compared to 1e-12 relative."""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from llmrelay.cost import ledger_repeats as rp
from llmrelay.cost import ledger_sql as q
from llmrelay.cost.ledger import LedgerRow, LedgerStore
from llmrelay.cost.ledger_plan import week_of
from llmrelay.cost.ledger_postgres import PostgresLedger
from llmrelay.cost.ledger_sqlite import SQLiteLedger

START = 1_764_532_800.0  # 2025-11-30 20:00 UTC: a Sunday; a week and a month end at its midnight
WINDOW_S = 3 * 3600.0
BATCH = 50
TABLES = ("usage_ledger", *q.ALL_ROLLUPS, "usage_prompts_seen", "usage_daily_repeats")


def make_rows(seed: int, n: int = 800) -> list[LedgerRow]:
    """Rows over ~32 hours: batches straddle the Sunday-Monday midnight (a new day, week and month)
    and the Monday-Tuesday one (a new day in the same week and month); some rows arrive late."""
    rng = random.Random(seed)
    prompts = [f"p{i}" for i in range(60)]
    out = []
    ts = START
    for i in range(n):
        ts += rng.uniform(0, 290)
        late = rng.random() < 0.05
        out.append(LedgerRow(
            ts=ts - 7200.0 if late else ts, request_id=f"r{i}",
            status=rng.choice(("ok", "ok", "ok", "cached", "error", "joined")),
            key_id=rng.choice((None, "k1", "k2", "k3")), user_id=rng.choice((None, *(f"u{j}" for j in range(9)))),
            team=rng.choice((None, "t1", "t2")), session=rng.choice((None, "s1", "s2")),
            model_group=rng.choice(("fast", None)), provider=rng.choice(("p", "q", None)),
            model=rng.choice(("m1", "m2", None)), input_tokens=rng.randrange(5000), output_tokens=rng.randrange(900),
            cache_read_tokens=rng.randrange(3) * 100, cache_write_tokens=rng.randrange(2) * 50,
            reasoning_tokens=rng.randrange(4) * 10, cost_usd=rng.random() / 50, cost_saved_usd=rng.random() / 500,
            unpriced=rng.random() < 0.1, latency_ms=rng.choice((None, rng.random() * 3000)),
            ttft_ms=rng.choice((None, rng.random() * 300)), cache_status=rng.choice(("off", "hit", "miss")),
            joined=rng.random() < 0.05, prompt_hash=rng.choice((None, *prompts)),
            prefix_hash=rng.choice((None, "x1", "x2", "x3")), prefix_tokens=rng.choice((0, 300)),
            estimated=rng.random() < 0.05))
    return out


def _measures(v: tuple[Any, ...]) -> tuple[Any, ...]:
    at = {c: i for i, c in enumerate(q.ROW_COLUMNS)}
    return (1, *(v[at[c]] or 0 for c in ("input_tokens", "output_tokens", "cache_read_tokens",
                                          "cache_write_tokens", "reasoning_tokens")),
            float(v[at["cost_usd"]] or 0.0), float(v[at["cost_saved_usd"]] or 0.0), v[at["unpriced"]],
            int(v[at["status"]] not in ("ok", "cached", "joined")), int(v[at["cache_status"]] == "hit"),
            float(v[at["latency_ms"]] or 0.0))


def _reference_row(conn: sqlite3.Connection, v: tuple[Any, ...]) -> None:
    """One row as the plain definition has it: the raw row and every roll-up upserted alone."""
    at = {c: i for i, c in enumerate(q.ROW_COLUMNS)}
    conn.execute(q.INSERT_ROW, v)
    labels = {"day": v[0], "week": week_of(v[0]), "month": v[0][:7]}
    for table, dims in q.ALL_ROLLUPS.items():
        key = tuple(labels[d] if d in labels else str(v[at[d]] or "") for d in dims)
        conn.execute(q.UPSERTS[table], (*key, *_measures(v)))


def _reference_seen(conn: sqlite3.Connection, v: tuple[Any, ...]) -> None:
    """One row's last-seen lookups and upserts and its repeats, on their own."""
    at = {c: i for i, c in enumerate(q.ROW_COLUMNS)}
    if v[at["status"]] != "ok":
        return
    ts, model, provider = v[at["ts"]], v[at["model"]] or "", v[at["provider"]] or ""
    for col, kind in rp.KINDS.items():
        h = v[at[col]]
        if not h:
            continue
        found = conn.execute("SELECT ts FROM usage_prompts_seen WHERE hash = ? AND kind = ? AND model = ? "
                             "AND provider = ?", (h, kind, model, provider)).fetchone()
        before = None if found is None else found[0]
        if before is not None and 0 <= ts - before <= WINDOW_S:
            conn.execute(rp.UPSERT_REPEATS, (v[0], kind, h, model, provider, 1, float(v[at["cost_usd"]] or 0.0),
                                             v[at["input_tokens"]] or 0, v[at["cache_read_tokens"]] or 0,
                                             v[at["prefix_tokens"]] or 0))
        if before is None or ts > before:
            conn.execute(rp.UPSERT_SEEN, (h, kind, model, provider, ts))


def reference(path: Path, batches: list[list[LedgerRow]], tz: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    for stmt in (*q.SCHEMA, *rp.SCHEMA, *(s for t in q.COARSE_ROLLUPS for s in q.coarse_rollup_fill(t, "sqlite"))):
        conn.execute(stmt)
    forgotten = 0.0
    for batch in batches:
        values = [q.row_values([r], tz)[0] for r in batch]
        for v in values:
            _reference_row(conn, v)
        for v in sorted(values, key=lambda v: v[1]):  # repeats are taken in time order
            _reference_seen(conn, v)
        newest = max(v[1] for v in values)
        if newest - forgotten > 3600:  # the store's hourly forget, at the same batch ends
            conn.execute(rp.FORGET_SEEN, (newest - WINDOW_S,))
            forgotten = newest
    return conn


def _order(table: str) -> str:
    if table == "usage_ledger":
        return "ts, request_id"
    if table == "usage_prompts_seen":
        return "hash, kind, model, provider"
    if table == "usage_daily_repeats":
        return "day, kind, hash, model, provider"
    return ", ".join(q.ALL_ROLLUPS[table])


def _same(got: list[tuple[Any, ...]], want: list[tuple[Any, ...]], table: str) -> None:
    assert len(got) == len(want) and len(want) > 0, table
    for g, w in zip(got, want, strict=True):
        assert len(g) == len(w), table
        for a, b in zip(g, w, strict=True):
            if isinstance(b, float) or isinstance(a, float):
                assert a == pytest.approx(b, rel=1e-12, abs=1e-15), (table, g, w)
            else:
                assert a == b, (table, g, w)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LedgerStore]:
    if request.param == "sqlite":
        yield SQLiteLedger(f"sqlite:///{tmp_path / 'batched.db'}", timezone="UTC", repeat_window_s=WINDOW_S)
    else:
        yield PostgresLedger(request.getfixturevalue("postgres_url"), timezone="UTC", repeat_window_s=WINDOW_S)


async def _contents(store: LedgerStore, table: str) -> list[tuple[Any, ...]]:
    cols = q.ROW_COLUMNS if table == "usage_ledger" else None
    sql = f"SELECT {', '.join(cols) if cols else '*'} FROM {table} ORDER BY {_order(table)}"
    return [tuple(r.values()) for r in await store._fetch(sql, [])]  # type: ignore[attr-defined]


@pytest.mark.parametrize("seed", [1, 2])
async def test_batched_write_equals_the_row_by_row_reference(store: LedgerStore, tmp_path: Path, seed: int) -> None:
    rows = make_rows(seed)
    batches = [rows[i:i + BATCH] for i in range(0, len(rows), BATCH)]
    for batch in batches:
        await store.write(batch)
    ref = reference(tmp_path / "reference.db", batches, "UTC")
    try:
        for table in TABLES:
            cols = ", ".join(q.ROW_COLUMNS) if table == "usage_ledger" else "*"
            want = ref.execute(f"SELECT {cols} FROM {table} ORDER BY {_order(table)}").fetchall()
            _same(await _contents(store, table), want, table)
        # The data reached every path: repeats, a batch over a new week and month, one over a new day.
        assert ref.execute("SELECT COUNT(DISTINCT week) FROM usage_weekly").fetchone()[0] == 2
        assert ref.execute("SELECT COUNT(DISTINCT day) FROM usage_daily").fetchone()[0] == 3
    finally:
        ref.close()
        await store.aclose()


@pytest.mark.parametrize("seed", [3, 4])
def test_weekly_and_monthly_rows_are_the_daily_ones_summed_per_label(seed: int) -> None:
    # Relabelled without summing when no two days of a batch share a label; summed otherwise.
    rows = make_rows(seed)
    paths = set()
    for i in range(0, len(rows), BATCH):
        values = q.row_values(rows[i:i + BATCH], "UTC")
        out = q.rollups_of(values)
        days = {v[0] for v in values}
        for grain, tables in q.COARSER.items():
            for daily, coarse in tables.items():
                assert out[coarse] == q.coarser_values(out[daily], grain), (coarse, days)
        paths.add((len(days), len({week_of(d) for d in days})))
    assert {(1, 1), (2, 2), (2, 1)} <= paths
