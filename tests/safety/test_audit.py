"""The audit chain detects edited, deleted, inserted and reordered entries, on every backend."""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from llmrelay.safety.audit import AuditLog, load_secret
from llmrelay.safety.audit_store import open_store

Exec = Callable[[str], Awaitable[None]]


async def _fill(log: AuditLog, n: int = 6) -> None:
    for i in range(n):
        log.record("safety", {"i": i, "action": "flag"}, user="alice" if i % 2 else "bob", content=f"text {i}")
    await log.flush()


# Tampering, as SQL run directly against the store; each names the first entry that must fail.
TAMPERING: dict[str, tuple[list[str], int, str]] = {
    "edit": (["UPDATE audit_log SET data = '{\"action\":\"allow\",\"i\":3}' WHERE id = 4"], 4, "edited"),
    "delete": (["DELETE FROM audit_log WHERE id = 3"], 4, "missing"),
    "insert": (["UPDATE audit_log SET id = id + 100 WHERE id >= 3", "UPDATE audit_log SET id = id - 99 WHERE id >= 103",
                "INSERT INTO audit_log VALUES (3, 1.0, 'safety', NULL, '{}', (SELECT mac FROM audit_log WHERE id = 2), 'forged')"],
               3, "edited"),
    "reorder": (["UPDATE audit_log SET id = 100 WHERE id = 2", "UPDATE audit_log SET id = 2 WHERE id = 5",
                 "UPDATE audit_log SET id = 5 WHERE id = 100"], 2, "link"),
}


async def _check(log: AuditLog, run: Exec, case: str) -> None:
    await _fill(log)
    assert (await log.verify()).ok
    stmts, bad_id, why = TAMPERING[case]
    for s in stmts:
        await run(s)
    result = await log.verify()
    assert not result.ok
    assert result.first_bad_id == bad_id
    assert why in (result.reason or "")


@pytest.mark.parametrize("case", sorted(TAMPERING))
async def test_sqlite_tampering_is_detected(case: str, sqlite_log: AuditLog, tmp_path: Path) -> None:
    async def run(sql: str) -> None:
        db = sqlite3.connect(tmp_path / "audit.db")
        db.execute(sql)
        db.commit()
        db.close()

    await _check(sqlite_log, run, case)


@pytest.mark.postgres
@pytest.mark.parametrize("case", sorted(TAMPERING))
async def test_postgres_tampering_is_detected(case: str, postgres_url: str, secret: bytes) -> None:
    import asyncpg

    conn = await asyncpg.connect(postgres_url)
    await conn.execute("DROP TABLE IF EXISTS audit_log, audit_subjects, audit_content")
    log = AuditLog(open_store(postgres_url), secret)
    try:
        async def run(sql: str) -> None:
            await conn.execute(sql)

        await _check(log, run, case)
    finally:
        await log.store.aclose()
        await conn.close()


async def test_truncation_is_caught_with_an_exported_head(sqlite_log: AuditLog, tmp_path: Path) -> None:
    await _fill(sqlite_log)
    head = await sqlite_log.head()
    sqlite_log.record("later", {"x": 1})
    await sqlite_log.flush()
    assert (await sqlite_log.verify(head["mac"])).ok  # newer entries may follow an anchored head
    db = sqlite3.connect(tmp_path / "audit.db")
    db.execute("DELETE FROM audit_log WHERE id >= 6")
    db.commit()
    result = await sqlite_log.verify(head["mac"])
    assert not result.ok and result.first_bad_id == 6


async def test_wrong_secret_fails_first_entry(sqlite_log: AuditLog, tmp_path: Path) -> None:
    await _fill(sqlite_log, 2)
    other = AuditLog(open_store(f"sqlite:///{tmp_path}/audit.db"), b"another")
    result = await other.verify()
    assert (result.ok, result.first_bad_id) == (False, 1)
    await other.store.aclose()


async def test_erasure_unlinks_user_and_chain_still_verifies(sqlite_log: AuditLog, tmp_path: Path) -> None:
    await _fill(sqlite_log)
    exported = await sqlite_log.export_user("alice")
    assert [e["data"]["i"] for e in exported["entries"]] == [1, 3, 5]
    assert exported["entries"][0]["content"] == "text 1"
    db = sqlite3.connect(tmp_path / "audit.db")
    assert db.execute("SELECT count(*) FROM audit_subjects WHERE user_id = 'alice'").fetchone()[0] == 1
    erased = await sqlite_log.erase_user("alice")
    assert erased == {"erased_content": 3, "unlinked": True}
    assert (await sqlite_log.export_user("alice"))["entries"] == []
    assert (await sqlite_log.verify()).ok
    assert db.execute("SELECT count(*) FROM audit_subjects WHERE user_id = 'alice'").fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM audit_log WHERE subject LIKE '%alice%'").fetchone()[0] == 0


async def test_retention_deletes_old_content_only(tmp_path: Path, secret: bytes) -> None:
    now = [1_000_000.0]
    log = AuditLog(open_store(f"sqlite:///{tmp_path}/a.db"), secret, clock=lambda: now[0])
    log.record("req", {"n": 1}, user="u", content="old")
    now[0] += 10 * 86400
    log.record("req", {"n": 2}, user="u", content="new")
    await log.flush()
    assert await log.apply_retention(5) == 1
    contents = [e.get("content") for e in (await log.export_user("u"))["entries"]]
    assert contents == [None, "new"]
    assert (await log.verify()).ok
    await log.store.aclose()


async def test_background_writer_batches_off_the_request_path(tmp_path: Path, secret: bytes) -> None:
    log = AuditLog(open_store(f"sqlite:///{tmp_path}/a.db"), secret, flush_s=0.01)
    await log.start()
    for i in range(50):
        log.record("req", {"i": i})  # returns at once: nothing is written yet
    await log.aclose()  # drains the queue
    log2 = AuditLog(open_store(f"sqlite:///{tmp_path}/a.db"), secret)
    result = await log2.verify()
    assert (result.ok, result.checked) == (True, 50)
    await log2.store.aclose()


def test_generated_secret_is_private_and_stable(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/x.db"
    first = load_secret(None, url)
    key_file = tmp_path / "x.db.audit-key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert load_secret(None, url) == first
    assert load_secret("configured", url) == b"configured"


