"""The usage ledger's indexes are exactly the ones its queries use (issue #11).

Each query the gateway runs on the raw rows (reports over part-day windows, row listings, the
dashboard, privacy export and erasure, retention, repeats bookkeeping) is planned by SQLite on a
migrated database; every plan must read through an index, and every index on ``usage_ledger``
must be named by some plan (an index no query reads costs each written row a page for nothing).
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from llmrelay.cost import ledger_repeats as rp
from llmrelay.cost import ledger_sql as q
from llmrelay.cost import privacy
from llmrelay.cost.ledger import LedgerRow, UsageQuery
from llmrelay.cost.ledger_sqlite import SQLiteLedger
from llmrelay.ops import dashboard_data
from llmrelay.stores.migrate import upgrade
from llmrelay.stores.migrations import MIGRATIONS

T0 = 1_767_225_600.0
# Raw-row filters and the index each must use (the others are read through usage_ts).
FILTER_INDEX = {"key_id": "usage_key_ts", "user_id": "usage_user_ts", "session": "usage_session_ts",
                "team": "usage_team_ts", "model": "usage_model_ts"}


class _Recorder:
    """Stands in for a ledger in the dashboard's queries: keeps the SQL, answers no rows."""

    def __init__(self) -> None:
        self.sql: list[tuple[str, list[Any]]] = []

    async def _fetch(self, sql: str, params: list[Any]) -> list[dict[str, Any]]:
        self.sql.append((sql, params))
        return []


@pytest.fixture
async def db(tmp_path: Path) -> sqlite3.Connection:
    url = f"sqlite:///{tmp_path / 'plans.db'}"
    await upgrade(url)
    ledger = SQLiteLedger(url)
    await ledger.write([LedgerRow(ts=T0 + i, request_id=f"req_{i}", key_id="k", user_id="u", session="s",
                                  team="t", model="m", prompt_hash=f"h{i}") for i in range(20)])
    await ledger.aclose()
    return sqlite3.connect(tmp_path / "plans.db")


def _plan(db: sqlite3.Connection, sql: str, params: list[Any] | tuple[Any, ...]) -> str:
    return "\n".join(row[-1] for row in db.execute("EXPLAIN QUERY PLAN " + sql, tuple(params)))


def _indexes_named(plan: str) -> set[str]:
    return set(re.findall(r"USING (?:COVERING )?INDEX (\w+)", plan))


def _assert_indexed(db: sqlite3.Connection, plan: str) -> None:
    """No table is read whole (a ``SCAN`` of a table without an index; a subquery's is fine)."""
    tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    for line in plan.splitlines():
        scanned = re.match(r"SCAN (\w+)", line)
        assert not (scanned and scanned[1] in tables and "INDEX" not in line), plan


async def _raw_queries() -> list[tuple[str, list[Any] | tuple[Any, ...]]]:
    """Every query the gateway runs on usage_ledger's raw rows."""
    out: list[tuple[str, list[Any] | tuple[Any, ...]]] = []
    for col in ("key_id", "user_id", "session", "team", "model", "provider", "status", None):
        filters = ((col, "x"),) if col else ()
        query = UsageQuery(start=T0, end=T0 + 3600, by=("model",), filters=filters)
        out += [q.aggregate_sql(query), q.count_groups_sql(query)]
    out += [q.rows_sql(T0, T0 + 60, 100), (q.PRUNE, (T0,)), (q.COUNT, ()),
            (privacy._USER_ROWS, ["u"]), (privacy._COUNT_USER, ["u"]), (privacy._ERASE_ROWS, ["e", "u"])]
    recorder = _Recorder()
    await dashboard_data.spend_series(recorder, T0, 60)
    await dashboard_data.latency(recorder, T0)
    return out + recorder.sql


async def test_each_raw_filter_reads_its_index(db: sqlite3.Connection) -> None:
    for col, index in FILTER_INDEX.items():
        sql, params = q.aggregate_sql(UsageQuery(start=T0, end=T0 + 3600, by=("model",), filters=((col, "x"),)))
        assert _indexes_named(_plan(db, sql, params)) == {index}, col
    for sql, params in (privacy._USER_ROWS, ["u"]), (privacy._ERASE_ROWS, ["e", "u"]):
        assert _indexes_named(_plan(db, sql, params)) == {"usage_user_ts"}
    sql, params = q.rows_sql(T0, None, 10)
    assert _indexes_named(_plan(db, sql, params)) == {"usage_ts"}
    assert _indexes_named(_plan(db, q.PRUNE, (T0,))) == {"usage_ts"}


async def test_every_ledger_index_is_read_by_a_query_and_no_query_scans(db: sqlite3.Connection) -> None:
    used: set[str] = set()
    for sql, params in await _raw_queries():
        plan = _plan(db, sql, params)
        _assert_indexed(db, plan)
        used |= _indexes_named(plan)
    have = {name for (name,) in db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'usage_ledger'")}
    assert have == used
    assert not have & {"usage_request", "usage_prompt", "usage_prefix"}


async def test_repeats_bookkeeping_and_rollup_reports_are_indexed(db: sqlite3.Connection) -> None:
    assert "sqlite_autoindex_usage_prompts_seen" in _plan(db, rp.lookup_sql(3), ["a", "b", "c"])
    assert _indexes_named(_plan(db, rp.FORGET_SEEN, (T0,))) == {"usage_prompts_seen_ts"}
    _assert_indexed(db, _plan(db, *rp.repeated_sql("prompt_hash", "2026-01-01", 2, 20)))
    for by in (("user_id",), ("key_id",), ("model",), ("user_id", "day"), ("team",)):
        query = UsageQuery(start=T0 - 90 * 86400, by=by, days=("2025-10-03", "2025-12-31"))
        sql, params = q.aggregate_sql(query)
        plan = _plan(db, sql, params)
        _assert_indexed(db, plan)
        assert "usage_ledger" not in sql and "sqlite_autoindex_usage_" in plan, by


async def test_a_ledger_opening_a_migrated_database_does_not_bring_the_dropped_indexes_back(
        tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    url = f"sqlite:///{path}"
    old = sqlite3.connect(path, isolation_level=None)   # a database at schema 5: it has all three
    for m in MIGRATIONS[:5]:
        for stmt in m.sqlite:
            old.execute(stmt)
    old.execute("CREATE TABLE llmrelay_schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                " applied_at DOUBLE PRECISION NOT NULL)")
    old.executemany("INSERT INTO llmrelay_schema_version VALUES (?, ?, 0)", [(m.version, m.name) for m in MIGRATIONS[:5]])
    before = {n for (n,) in old.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"usage_request", "usage_prompt", "usage_prefix"} <= before
    old.close()
    assert await upgrade(url) == [m.version for m in MIGRATIONS[5:]]  # 6 and any later
    ledger = SQLiteLedger(url)
    await ledger.write([LedgerRow(ts=T0, request_id="req_1")])
    await ledger.aclose()
    names = {n for (n,) in sqlite3.connect(path).execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "usage_user_ts" in names and not names & {"usage_request", "usage_prompt", "usage_prefix"}


@pytest.mark.postgres
async def test_postgres_upgrade_drops_the_unread_indexes_and_the_ledger_keeps_them_away(postgres_url: str) -> None:
    import asyncpg

    from llmrelay.cost.ledger_postgres import PostgresLedger

    conn = await asyncpg.connect(postgres_url)
    try:
        for m in MIGRATIONS[:5]:   # a database at schema 5, as the previous release left it
            for stmt in m.postgres:
                await conn.execute(stmt)
        assert await upgrade(postgres_url) == [m.version for m in MIGRATIONS]
        ledger = PostgresLedger(postgres_url)
        await ledger.write([LedgerRow(ts=T0, request_id="req_1", user_id="u")])
        await ledger.aclose()
        names = {r["indexname"] for r in await conn.fetch(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'usage_ledger'")}
    finally:
        await conn.close()
    assert {"usage_ts", "usage_user_ts", "usage_key_ts", "usage_session_ts"} <= names
    assert not names & {"usage_request", "usage_prompt", "usage_prefix"}


async def test_user_and_session_indexes_hold_only_rows_with_one_and_are_still_read(
        db: sqlite3.Connection, tmp_path: Path) -> None:
    # Migration 8: partial indexes (most rows are anonymous); "= ?" implies NOT NULL, so each query
    # by user or session still reads its index (checked above) and an anonymous row adds no entry.
    sql = dict(db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'usage_ledger'"))
    assert sql["usage_user_ts"].endswith("WHERE user_id IS NOT NULL")
    assert sql["usage_session_ts"].endswith("WHERE session IS NOT NULL")
    ledger = SQLiteLedger(f"sqlite:///{tmp_path / 'plans.db'}")
    await ledger.write([LedgerRow(ts=T0 + 100 + i, request_id=f"anon_{i}") for i in range(5)])
    await ledger.aclose()
    db2 = sqlite3.connect(tmp_path / "plans.db")
    try:
        for index, col in (("usage_user_ts", "user_id"), ("usage_session_ts", "session")):
            # The index has the fixture's 20 rows with a user and a session, not the anonymous ones:
            # it cannot answer for every row (a full index could), only for those with a value.
            with pytest.raises(sqlite3.OperationalError, match="no query solution"):
                db2.execute(f"SELECT ts FROM usage_ledger INDEXED BY {index}").fetchall()
            found = db2.execute(f"SELECT COUNT(*) FROM usage_ledger INDEXED BY {index} WHERE {col} = 'u'"
                                if col == "user_id" else
                                f"SELECT COUNT(*) FROM usage_ledger INDEXED BY {index} WHERE {col} = 's'")
            assert found.fetchone()[0] == 20
        assert db2.execute("SELECT COUNT(*) FROM usage_ledger").fetchone()[0] == 25
    finally:
        db2.close()
