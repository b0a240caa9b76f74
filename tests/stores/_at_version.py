"""A database left at an older schema version, as a migration test's starting point: the
migrations up to ``version`` applied and recorded, as ``llmrelay db upgrade`` would have left it."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from llmrelay.stores.migrate import VERSION_TABLE, _apply_sqlite
from llmrelay.stores.migrations import MIGRATIONS

_CREATE = (f"CREATE TABLE {VERSION_TABLE} (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
           " applied_at DOUBLE PRECISION NOT NULL)")


def sqlite_at_version(path: Path, version: int) -> None:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute(_CREATE)
    for m in MIGRATIONS:
        if m.version <= version:
            _apply_sqlite(db, m)
    db.close()


async def postgres_at_version(conn: Any, version: int) -> None:
    """``conn``: an asyncpg connection to an empty database."""
    await conn.execute(_CREATE)
    for m in MIGRATIONS:
        if m.version <= version:
            for stmt in m.statements("postgres"):
                await conn.execute(stmt)
            await conn.execute(f"INSERT INTO {VERSION_TABLE} VALUES ($1, $2, 0)", m.version, m.name)
