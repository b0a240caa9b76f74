"""Migration 7: the audit table rebuilt with its id as the rowid and a partial subject index. A
database at version 6 keeps every entry byte for byte, its chain verifies, lookups by subject use
the index, and the chain goes on from where it was."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from tests.stores._at_version import postgres_at_version, sqlite_at_version

from llmrelay.safety.audit import AuditLog
from llmrelay.safety.audit_store import open_store
from llmrelay.stores.migrate import schema_status, upgrade
from llmrelay.stores.migrations import LATEST, MIGRATIONS

SECRET = b"migration-test-secret"
USERS = ["ann", None, "bob", None, None, "ann"]


def _at_version_6(path: Path) -> None:
    sqlite_at_version(path, 6)


async def _fill(log: AuditLog, n: int, offset: int = 0) -> None:
    for i in range(n):
        user = USERS[(i + offset) % len(USERS)]
        log.record("request", {"i": i + offset, "status": "ok"}, user=user,
                   content=f"prompt {i + offset}" if user else None)
    await log.flush()


def _rows(path: Path, sql: str) -> list[Any]:
    db = sqlite3.connect(path)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def _table_sql(path: Path) -> str:
    return str(_rows(path, "SELECT sql FROM sqlite_master WHERE name = 'audit_log'")[0][0])


async def test_upgrade_from_6_keeps_every_entry_and_the_chain(tmp_path: Path) -> None:
    path = tmp_path / "gw.db"
    url = f"sqlite:///{path}"
    _at_version_6(path)
    assert (await schema_status(url)).current == 6
    log = AuditLog(open_store(url), SECRET, clock=iter(range(1_000, 10_000)).__next__)
    await _fill(log, 40)
    await log.store.aclose()
    assert "BIGINT PRIMARY KEY" in _table_sql(path)  # the store kept the version-6 table it found
    before = _rows(path, "SELECT * FROM audit_log ORDER BY id")
    content = _rows(path, "SELECT * FROM audit_content ORDER BY entry_id")

    assert await upgrade(url) == [m.version for m in MIGRATIONS[6:]] and LATEST >= 7

    assert "INTEGER PRIMARY KEY" in _table_sql(path)
    assert _rows(path, "SELECT * FROM audit_log ORDER BY id") == before
    assert _rows(path, "SELECT * FROM audit_content ORDER BY entry_id") == content
    indexes = _rows(path, "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'audit_log'")
    assert [(n, "WHERE subject IS NOT NULL" in (s or "")) for n, s in indexes] == [("audit_log_subject", True)]
    plan = " ".join(str(r) for r in _rows(path, "EXPLAIN QUERY PLAN SELECT * FROM audit_log WHERE subject = 'x'"))
    assert "audit_log_subject" in plan

    log = AuditLog(open_store(url), SECRET, clock=iter(range(20_000, 30_000)).__next__)
    try:
        assert (await log.verify()).ok
        await _fill(log, 25, offset=40)  # the chain goes on from the last migrated entry
        result = await log.verify()
        assert result.ok
        ids = [r[0] for r in _rows(path, "SELECT id FROM audit_log ORDER BY id")]
        assert ids == list(range(1, 66))
        export = await log.export_user("ann")
        assert len(export["entries"]) == sum(1 for i in range(65) if USERS[i % len(USERS)] == "ann")
    finally:
        await log.store.aclose()


async def test_a_tampered_entry_still_fails_after_the_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "gw.db"
    url = f"sqlite:///{path}"
    _at_version_6(path)
    log = AuditLog(open_store(url), SECRET)
    await _fill(log, 10)
    await log.store.aclose()
    db = sqlite3.connect(path)
    db.execute("UPDATE audit_log SET data = '{\"i\": 99}' WHERE id = 4")
    db.commit()
    db.close()
    await upgrade(url)
    log = AuditLog(open_store(url), SECRET)
    try:
        result = await log.verify()
        assert (result.ok, result.first_bad_id) == (False, 4)
    finally:
        await log.store.aclose()


async def test_a_store_on_an_unmigrated_database_makes_the_new_shape(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    log = AuditLog(open_store(f"sqlite:///{path}"), SECRET)
    try:
        await _fill(log, 5)
        assert (await log.verify()).ok
    finally:
        await log.store.aclose()
    assert "INTEGER PRIMARY KEY" in _table_sql(path)
    assert not _rows(path, "SELECT name FROM sqlite_master WHERE name LIKE 'sqlite_autoindex_audit_log%'")


@pytest.mark.postgres
async def test_postgres_upgrade_makes_the_subject_index_partial_and_the_chain_verifies(postgres_url: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(postgres_url)
    try:
        await postgres_at_version(conn, 6)
        log = AuditLog(open_store(postgres_url), SECRET)
        await _fill(log, 12)
        await log.store.aclose()
        before = [tuple(r) for r in await conn.fetch("SELECT * FROM audit_log ORDER BY id")]
        assert await upgrade(postgres_url) == [m.version for m in MIGRATIONS[6:]]
        indexdef = await conn.fetchval("SELECT indexdef FROM pg_indexes WHERE indexname = 'audit_log_subject'")
        assert "WHERE (subject IS NOT NULL)" in indexdef
        assert [tuple(r) for r in await conn.fetch("SELECT * FROM audit_log ORDER BY id")] == before
        log = AuditLog(open_store(postgres_url), SECRET)
        try:
            await _fill(log, 6, offset=12)
            assert (await log.verify()).ok
            assert len((await log.export_user("bob"))["entries"]) == sum(
                1 for i in range(18) if USERS[i % len(USERS)] == "bob")
        finally:
            await log.store.aclose()
    finally:
        await conn.close()
