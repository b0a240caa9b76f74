"""The migration runner: which schema version a database has, and bringing it up to date.

The version lives in ``llmrelay_schema_version`` (one row per applied migration). Upgrades are
serialised: on PostgreSQL by a transaction-scoped advisory lock, so a fleet starting together
applies each migration once; on SQLite by ``BEGIN IMMEDIATE``. Each migration runs in its own
transaction with its version row, so a failed one leaves the database at the previous version.

    status = await schema_status("sqlite:///llmrelay.db")
    status.current, status.latest, status.pending          # 0, 2, (1, 2)
    await upgrade("sqlite:///llmrelay.db")                 # -> [1, 2]
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .migrations import LATEST, MIGRATIONS, Migration
from .urls import sqlite_path

VERSION_TABLE = "llmrelay_schema_version"
_CREATE_VERSION = (f"CREATE TABLE IF NOT EXISTS {VERSION_TABLE} (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                   " applied_at DOUBLE PRECISION NOT NULL)")
_LOCK_ID = 7243010


@dataclass(frozen=True, slots=True)
class SchemaStatus:
    url: str
    dialect: str
    current: int
    latest: int

    @property
    def pending(self) -> tuple[int, ...]:
        return tuple(m.version for m in MIGRATIONS if m.version > self.current)

    @property
    def too_new(self) -> bool:
        return self.current > self.latest


def dialect_of(url: str) -> tuple[str, str]:
    """``(dialect, target)``: ``("sqlite", path)``, ``("postgres", dsn)`` or ``("memory", "")``."""
    scheme, sep, _ = url.partition("://")
    if not sep:
        raise ConfigError(f"storage.url {url!r} is not a URL; use sqlite:///llmrelay.db or postgresql://...")
    if scheme == "memory":
        return "memory", ""
    if scheme == "sqlite":
        return "sqlite", sqlite_path(url) or ":memory:"
    if scheme in ("postgresql", "postgres", "postgresql+asyncpg"):
        return "postgres", url.replace("postgresql+asyncpg://", "postgresql://")
    raise ConfigError(f"storage.url {url!r}: schema migrations support sqlite:/// and postgresql:// URLs")


async def schema_status(url: str) -> SchemaStatus:
    dialect, target = dialect_of(url)
    if dialect == "memory":
        return SchemaStatus(url, dialect, LATEST, LATEST)
    if dialect == "sqlite":
        current = await asyncio.to_thread(_sqlite_run, target, None)
    else:
        current = await _pg_run(target, None)
    return SchemaStatus(url, dialect, current, LATEST)


async def upgrade(url: str) -> list[int]:
    """Apply every pending migration; return the versions applied (empty when up to date).
    Raises :class:`SchemaTooNewError` when the database is newer than this release."""
    dialect, target = dialect_of(url)
    if dialect == "memory":
        return []
    if dialect == "sqlite":
        applied: list[int] = await asyncio.to_thread(_sqlite_run, target, [])
        return applied
    return await _pg_run(target, [])  # type: ignore[no-any-return]


class SchemaTooNewError(ConfigError):
    """The database was migrated by a newer llmrelay than this one."""


def too_new(url: str, current: int) -> SchemaTooNewError:
    return SchemaTooNewError(
        f"the database at {_safe(url)} has schema version {current}, newer than this llmrelay knows "
        f"({LATEST}); run the newer llmrelay release here, or restore a backup"
    )


def _safe(url: str) -> str:
    """The URL without its password, for messages."""
    scheme, sep, rest = url.partition("://")
    creds, at, host = rest.rpartition("@")
    if not at:
        return url
    return f"{scheme}{sep}{creds.split(':')[0]}@{host}"


# ---- SQLite -----------------------------------------------------------------------------------


def _sqlite_run(path: str, applied: list[int] | None) -> Any:
    """Read the version (``applied`` None) or apply pending migrations into ``applied``."""
    if path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None, timeout=10.0)
    try:
        if applied is None:
            return _sqlite_version(db)
        db.execute("BEGIN IMMEDIATE")
        try:
            current = _sqlite_version(db)
            if current > LATEST:
                raise too_new(f"sqlite:///{path}", current)
            for m in MIGRATIONS:
                if m.version > current:
                    _apply_sqlite(db, m)
                    applied.append(m.version)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return applied
    finally:
        db.close()


def _sqlite_version(db: sqlite3.Connection) -> int:
    db.execute(_CREATE_VERSION)
    row = db.execute(f"SELECT MAX(version) FROM {VERSION_TABLE}").fetchone()
    return int(row[0] or 0)


def _apply_sqlite(db: sqlite3.Connection, m: Migration) -> None:
    exists = m.unless_table and db.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (m.unless_table,)).fetchone()
    for stmt in () if exists else m.statements("sqlite"):
        db.execute(stmt)
    db.execute(f"INSERT INTO {VERSION_TABLE} (version, name, applied_at) VALUES (?, ?, ?)",
               (m.version, m.name, time.time()))


# ---- PostgreSQL -------------------------------------------------------------------------------


async def _pg_run(dsn: str, applied: list[int] | None) -> Any:
    try:
        import asyncpg
    except ImportError:
        raise ConfigError("storage.url is postgresql:// but asyncpg is missing; pip install 'llmrelay[postgres]'") from None
    try:
        conn = await asyncpg.connect(dsn, timeout=10)
    except (OSError, asyncpg.PostgresError) as exc:
        raise ConfigError(f"cannot reach the database at {_safe(dsn)}: {exc}") from exc
    try:
        async with conn.transaction():
            # Serialises a fleet starting together: the others wait, then find nothing pending.
            await conn.execute(f"SELECT pg_advisory_xact_lock({_LOCK_ID})")
            await conn.execute(_CREATE_VERSION)
            current = int(await conn.fetchval(f"SELECT COALESCE(MAX(version), 0) FROM {VERSION_TABLE}"))
            if applied is None:
                return current
            if current > LATEST:
                raise too_new(dsn, current)
            for m in MIGRATIONS:
                if m.version > current:
                    exists = m.unless_table and await conn.fetchval("SELECT to_regclass($1)", m.unless_table)
                    for stmt in () if exists else m.statements("postgres"):
                        await conn.execute(stmt)
                    await conn.execute(f"INSERT INTO {VERSION_TABLE} (version, name, applied_at) VALUES ($1, $2, $3)",
                                       m.version, m.name, time.time())
                    applied.append(m.version)
        return applied
    finally:
        await conn.close()
