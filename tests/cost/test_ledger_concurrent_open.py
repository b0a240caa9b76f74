"""Worker processes that open one SQLite ledger at the same moment (``serve --workers N``): each
must find the schema complete however their set-up interleaves. A ledger made by migration 1 lacks
the later ``estimated`` column, which every opener checks for and adds: another opener adding it
between one's check and its ``ALTER TABLE`` once stopped a two-worker start ("duplicate column")."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from llmrelay.cost.ledger_sqlite import SQLiteLedger
from llmrelay.stores.migrations import MIGRATIONS


def _columns(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {row[1] for row in conn.execute("PRAGMA table_info(usage_ledger)")}


async def test_another_opener_cannot_add_a_column_between_the_check_and_the_add(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "ledger.db"
    with sqlite3.connect(db) as conn:
        for stmt in MIGRATIONS[0].sqlite:
            conn.execute(stmt)
    assert "estimated" not in _columns(db)
    real_connect = sqlite3.connect
    attempts: list[str] = []

    def other_opener_interleaves(statement: str) -> None:
        # Right after this opener read the columns, a second one tries to add the missing column.
        if "table_info(usage_ledger)" in statement and not attempts:
            other = real_connect(db, timeout=0, isolation_level=None)
            try:
                other.execute("ALTER TABLE usage_ledger ADD COLUMN estimated INTEGER")
                attempts.append("added")
            except sqlite3.OperationalError as exc:
                attempts.append(str(exc))
            finally:
                other.close()

    def connect(*args: object, **kwargs: object) -> sqlite3.Connection:
        conn = real_connect(*args, **kwargs)  # type: ignore[arg-type]
        conn.set_trace_callback(other_opener_interleaves)
        return conn

    monkeypatch.setattr(sqlite3, "connect", connect)
    ledger = SQLiteLedger(f"sqlite:///{db}")
    await ledger.open()  # without the write lock: "duplicate column name: estimated"
    await ledger.aclose()
    assert attempts == ["database is locked"]  # the check and the add hold the write lock
    assert "estimated" in _columns(db)
