"""Migration 8: the ledger's user, session and team indexes hold only rows with one. A
database at version 7 keeps every row, the indexes become partial, the queries that filter by user
or session or team still read them (SQLite and PostgreSQL) and answer the same; a database the ledger made
itself has the same user and session index definitions as a migrated one."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from tests.stores._at_version import postgres_at_version, sqlite_at_version

from llmrelay.cost import ledger_sql as q
from llmrelay.cost import privacy
from llmrelay.cost.ledger import LedgerRow, UsageQuery
from llmrelay.cost.ledger_sqlite import SQLiteLedger
from llmrelay.stores.migrate import upgrade

T0 = 1_767_225_600.0
PARTIAL = {"usage_user_ts": "WHERE user_id IS NOT NULL", "usage_session_ts": "WHERE session IS NOT NULL",
           "usage_team_ts": "WHERE team IS NOT NULL"}
OWN = ("usage_user_ts", "usage_session_ts")  # the ones the ledger makes itself


def _rows(n: int = 60) -> list[LedgerRow]:
    # Most rows anonymous (no user, no session), as behind keys without a user.
    return [LedgerRow(ts=T0 + i, request_id=f"r{i}", key_id="k", user_id=("u1", "u2")[i % 2] if i % 3 == 0 else None,
                      session="s1" if i % 4 == 0 else None, team="t1" if i % 5 == 0 else None, model="m", cost_usd=0.001 * i) for i in range(n)]


def _at_version_7(path: Path) -> None:
    sqlite_at_version(path, 7)


def _fetch(path: Path, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> list[Any]:
    db = sqlite3.connect(path)
    try:
        return db.execute(sql, tuple(params)).fetchall()
    finally:
        db.close()


def _index_sql(path: Path) -> dict[str, str]:
    return {n: s for n, s in _fetch(path, "SELECT name, sql FROM sqlite_master WHERE type = 'index'"
                                          " AND tbl_name = 'usage_ledger' AND sql IS NOT NULL")}


def _user_and_session_queries() -> list[tuple[str, str, list[Any]]]:
    """(index it must read, SQL, parameters) of every raw-row query by user or session."""
    out: list[tuple[str, str, list[Any]]] = []
    for col, index, value in (("user_id", "usage_user_ts", "u1"), ("session", "usage_session_ts", "s1"),
                              ("team", "usage_team_ts", "t1")):
        query = UsageQuery(start=T0, end=T0 + 3600, by=("model",), filters=((col, value),))
        out += [(index, *q.aggregate_sql(query)), (index, *q.count_groups_sql(query))]
    return [*out, ("usage_user_ts", privacy._USER_ROWS, ["u1"]), ("usage_user_ts", privacy._COUNT_USER, ["u1"])]


async def _write(url: str, rows: list[LedgerRow]) -> None:
    ledger = SQLiteLedger(url)
    try:
        await ledger.write(rows)
    finally:
        await ledger.aclose()


async def test_upgrade_from_7_makes_the_indexes_partial_and_keeps_rows(tmp_path: Path) -> None:
    path = tmp_path / "gw.db"
    url = f"sqlite:///{path}"
    _at_version_7(path)
    await _write(url, _rows())
    assert "WHERE" not in _index_sql(path)["usage_user_ts"]  # version 7: full indexes
    before = _fetch(path, "SELECT rowid, * FROM usage_ledger ORDER BY rowid")
    answers = [_fetch(path, sql, params) for _, sql, params in _user_and_session_queries()]

    assert await upgrade(url) == [8]

    indexes = _index_sql(path)
    for name, where in PARTIAL.items():
        assert indexes[name].endswith(where), indexes[name]
    assert _fetch(path, "SELECT rowid, * FROM usage_ledger ORDER BY rowid") == before
    for (index, sql, params), answer in zip(_user_and_session_queries(), answers, strict=True):
        plan = " ".join(r[-1] for r in _fetch(path, "EXPLAIN QUERY PLAN " + sql, params))
        assert index in plan, (sql, plan)
        assert _fetch(path, sql, params) == answer and answer  # same rows, and not none
    # Partial: one entry per row with a user / a session, none for the anonymous rest.
    rows = _rows()
    assert _fetch(path, "SELECT COUNT(*) FROM usage_ledger INDEXED BY usage_user_ts WHERE user_id IS NOT NULL") == [
        (sum(r.user_id is not None for r in rows),)]
    assert 0 < sum(r.user_id is not None for r in rows) < len(rows)


async def test_the_ledger_alone_makes_the_migrated_indexes(tmp_path: Path) -> None:
    own, migrated = tmp_path / "own.db", tmp_path / "migrated.db"
    await _write(f"sqlite:///{own}", _rows(5))
    await upgrade(f"sqlite:///{migrated}")
    await _write(f"sqlite:///{migrated}", _rows(5))
    mine, theirs = _index_sql(own), _index_sql(migrated)
    for name in OWN:
        assert " ".join(mine[name].split()) == " ".join(theirs[name].split())
    # Adopted later by the migrations: nothing left to change, still partial.
    await upgrade(f"sqlite:///{own}")
    assert {n: _index_sql(own)[n] for n in OWN} == {n: mine[n] for n in OWN}
    assert _index_sql(own)["usage_team_ts"].endswith(PARTIAL["usage_team_ts"])


@pytest.mark.postgres
async def test_postgres_upgrade_makes_the_indexes_partial_and_queries_read_them(postgres_url: str) -> None:
    import asyncpg

    from llmrelay.cost.ledger_postgres import PostgresLedger, numbered

    conn = await asyncpg.connect(postgres_url)
    try:
        await postgres_at_version(conn, 7)
        ledger = PostgresLedger(postgres_url)
        try:
            await ledger.write(_rows())
        finally:
            await ledger.aclose()
        before = [tuple(r) for r in await conn.fetch("SELECT * FROM usage_ledger ORDER BY ts")]
        answers = [await conn.fetch(numbered(sql), *p) for _, sql, p in _user_and_session_queries()]
        assert await upgrade(postgres_url) == [8]
        for name, where in PARTIAL.items():
            indexdef = await conn.fetchval("SELECT indexdef FROM pg_indexes WHERE indexname = $1", name)
            assert indexdef.endswith(where.replace("WHERE ", "WHERE (") + ")"), indexdef
        assert [tuple(r) for r in await conn.fetch("SELECT * FROM usage_ledger ORDER BY ts")] == before
        await conn.execute("SET enable_seqscan = off")  # a 60-row table: make the planner show its choice
        for (index, sql, params), answer in zip(_user_and_session_queries(), answers, strict=True):
            plan = "\n".join(r[0] for r in await conn.fetch("EXPLAIN " + numbered(sql), *params))
            assert index in plan, (sql, plan)
            assert await conn.fetch(numbered(sql), *params) == answer and answer
    finally:
        await conn.close()
