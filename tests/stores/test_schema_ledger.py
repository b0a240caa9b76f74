"""The migrated schema is the one the stores write to: a gateway's first ledger write succeeds
whether the migrations or the ledger itself created the tables, and roll-up figures survive."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from llmrelay.cost.ledger import LedgerRow, UsageQuery
from llmrelay.cost.ledger_sql import ROLLUPS
from llmrelay.cost.ledger_sqlite import SQLiteLedger
from llmrelay.stores.migrate import schema_status, upgrade
from llmrelay.stores.migrations import LATEST, MIGRATIONS


def _row(i: int, key: str, model: str) -> LedgerRow:
    return LedgerRow(ts=time.time(), request_id=f"req_{i}", key_id=key, user_id="u1", model=model,
                     provider="sim", input_tokens=10 * i, output_tokens=i, cost_usd=0.001 * i)


async def _write_and_sum(url: str, rows: list[LedgerRow], by: tuple[str, ...]) -> list[dict]:
    ledger = SQLiteLedger(url)
    try:
        await ledger.write(rows)
        # The rows' own day, not the clock's after the write (which may be past midnight UTC).
        today = time.strftime("%Y-%m-%d", time.gmtime(rows[0].ts))
        return await ledger.aggregate(UsageQuery(by=by, days=(today, today)))
    finally:
        await ledger.aclose()


async def test_ledger_writes_into_a_freshly_migrated_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    assert await upgrade(url) == [m.version for m in MIGRATIONS]
    got = await _write_and_sum(url, [_row(1, "k1", "m1"), _row(2, "k2", "m1")], ("key_id",))
    assert {r["key_id"]: r["requests"] for r in got} == {"k1": 1, "k2": 1}
    tables = {r[0] for r in sqlite3.connect(tmp_path / "fresh.db").execute("SELECT name FROM sqlite_master")}
    assert set(ROLLUPS) <= tables


async def test_rollups_made_by_the_wide_baseline_are_re_aggregated(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path, isolation_level=None)
    for m in MIGRATIONS[:2]:
        for stmt in m.sqlite:
            db.execute(stmt)
    db.execute("CREATE TABLE llmrelay_schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
               " applied_at DOUBLE PRECISION NOT NULL)")
    db.executemany("INSERT INTO llmrelay_schema_version VALUES (?, ?, 0)", [(m.version, m.name) for m in MIGRATIONS[:2]])
    # Two wide roll-up rows of the same model (different keys) become one narrow model row.
    for key, cost in (("k1", 0.5), ("k2", 0.25)):
        db.execute("INSERT INTO usage_daily VALUES ('2026-01-02', ?, 'u', 't', 'g', 'p', 'm', 'ok',"
                   " 3, 30, 3, 0, 0, 0, ?, 0, 0, 0, 0, 9.0)", (key, cost))
    db.close()
    assert await upgrade(f"sqlite:///{path}") == list(range(3, LATEST + 1))
    db = sqlite3.connect(path)
    assert db.execute("SELECT requests, cost_usd FROM usage_daily WHERE model = 'm'").fetchall() == [(6, 0.75)]
    assert sorted(db.execute("SELECT key_id, requests FROM usage_daily_key").fetchall()) == [("k1", 3), ("k2", 3)]


async def test_tables_the_ledger_made_itself_are_adopted(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger_first.db'}"
    await _write_and_sum(url, [_row(1, "k1", "m1")], ("model",))   # e.g. `llmrelay usage report` first
    assert (await schema_status(url)).current == 0
    await upgrade(url)
    got = await _write_and_sum(url, [_row(2, "k1", "m1")], ("model",))
    assert got[0]["requests"] == 2
