"""Where the audit chain lives: SQLite (default) or PostgreSQL, chosen by the storage URL.

Three tables: ``audit_log`` (the chain: id, ts, kind, subject pseudonym, data, prev mac, mac),
``audit_subjects`` (user id -> per-user salt; deleting a row is what erasure means) and
``audit_content`` (redacted prompt and answer text, outside the chain, deletable by retention).

Appends take a write lock (SQLite ``BEGIN IMMEDIATE``, a PostgreSQL advisory lock) so several
gateway processes extend one chain without forking it. The PostgreSQL driver (asyncpg, the
``postgres`` extra) is imported only when such a URL is used.

    store = open_store("sqlite:///llmrelay.db")   # or "postgresql://user:pw@host/db"
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any, Protocol, overload

from ..errors import ConfigError
from ..stores.urls import sqlite_path


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    ts: float
    kind: str
    subject: str | None
    data: str
    prev: str
    mac: str


@dataclass(frozen=True, slots=True)
class NewEntry:
    ts: float
    kind: str
    subject: str | None
    data: str
    content: str | None = None


# (id, prev mac, entry) -> mac
Sealer = Callable[[int, str, NewEntry], str]
GENESIS = "0" * 64

# An audit_log row in column order (id, ts, kind, subject, data, prev, mac), and an audit_content
# row (entry_id, subject, ts, content): what the writer builds and the store inserts as they are.
Row = tuple[int, float, str, "str | None", str, str, str]
ContentRow = tuple[int, "str | None", float, str]
# Given the chain's last id and mac (read under the store's write lock), a batch's rows linked
# and sealed after them, and its content rows. See ``AuditLog`` for the one the writer passes.
Chainer = Callable[[int, str], tuple[list[Row], list[ContentRow]]]


class Entries(Sequence[AuditEntry]):
    """Written rows read as :class:`AuditEntry` objects, each built only when looked at: the
    writer returns every batch it stores, and building an object per request summary that no
    caller reads cost ~1 us each.

        entries = Entries(rows); entries[0].mac == rows[0][6]
    """

    __slots__ = ("_rows",)

    def __init__(self, rows: Sequence[Row]) -> None:
        self._rows = rows

    def __len__(self) -> int:
        return len(self._rows)

    @overload
    def __getitem__(self, i: int) -> AuditEntry: ...
    @overload
    def __getitem__(self, i: slice) -> list[AuditEntry]: ...
    def __getitem__(self, i: int | slice) -> AuditEntry | list[AuditEntry]:
        if isinstance(i, slice):
            return [AuditEntry(*r) for r in self._rows[i]]
        return AuditEntry(*self._rows[i])

    def __iter__(self) -> Iterator[AuditEntry]:
        return (AuditEntry(*r) for r in self._rows)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Entries):
            return list(self._rows) == list(other._rows)
        return isinstance(other, Sequence) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]  # equal to lists, so unhashable like them

    def __repr__(self) -> str:
        return f"Entries({list(self)!r})"

# The shape of schema version 7 (stores/migrations.py), for a database no migration ran on: on
# SQLite the id is the rowid (one b-tree, not two); the subject index only holds entries with one
# (lookups are always ``subject = ?``).
def _schema(id_type: str) -> tuple[str, ...]:
    return (
        f"CREATE TABLE IF NOT EXISTS audit_log (id {id_type} PRIMARY KEY, ts DOUBLE PRECISION NOT NULL,"
        " kind TEXT NOT NULL, subject TEXT, data TEXT NOT NULL, prev TEXT NOT NULL, mac TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS audit_log_subject ON audit_log (subject) WHERE subject IS NOT NULL",
        "CREATE TABLE IF NOT EXISTS audit_subjects (user_id TEXT PRIMARY KEY, salt TEXT NOT NULL, pseudonym TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS audit_content (entry_id BIGINT PRIMARY KEY, subject TEXT,"
        " ts DOUBLE PRECISION NOT NULL, content TEXT NOT NULL)",
    )


_SCHEMA_SQLITE = _schema("INTEGER")
_SCHEMA_POSTGRES = _schema("BIGINT")


class AuditStore(Protocol):
    async def append(self, make_rows: Chainer) -> list[Row]: ...
    async def page(self, after_id: int, limit: int) -> list[AuditEntry]: ...
    async def last(self) -> AuditEntry | None: ...
    async def subject(self, user: str) -> tuple[str, str] | None: ...
    async def add_subject(self, user: str, salt: str, pseudonym: str) -> tuple[str, str]: ...
    async def erase_subject(self, user: str, pseudonym: str) -> int: ...
    async def by_subject(self, pseudonym: str) -> list[tuple[AuditEntry, str | None]]: ...
    async def delete_content_before(self, ts: float) -> int: ...
    async def aclose(self) -> None: ...


# Rows per INSERT statement on SQLite: one multi-row ``VALUES`` binds a batch ~30% cheaper than
# ``executemany`` (one statement step instead of one per row; 1.4 vs 2.0 us per row, 256-row
# batches). Capped by the connection's bound-parameter limit (999 before SQLite 3.32).
_ROWS_PER_INSERT = 256
_ROW_SQL = "(?,?,?,?,?,?,?)"


def _row(r: Sequence[Any]) -> AuditEntry:
    return AuditEntry(int(r[0]), float(r[1]), r[2], r[3], r[4], r[5], r[6])


class SQLiteAuditStore:
    """stdlib sqlite3 in a worker thread; one connection, serialised by a lock."""

    def __init__(self, path: str) -> None:
        self.path = path
        # Opened on first use: a gateway that never records anything creates no file.
        self._db: sqlite3.Connection | None = None
        self._lock = asyncio.Lock()
        self._per_insert = _ROWS_PER_INSERT

    def _connect(self) -> sqlite3.Connection:
        if self._db is None:
            db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
            if self.path != ":memory:":
                db.execute("PRAGMA journal_mode=WAL")
            for stmt in _SCHEMA_SQLITE:
                db.execute(stmt)
            params = db.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
            self._per_insert = max(1, min(_ROWS_PER_INSERT, params // _ROW_SQL.count("?")))
            self._db = db
        return self._db

    async def _run(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        async with self._lock:
            if self.path == ":memory:":
                return fn(self._connect())
            return await asyncio.to_thread(lambda: fn(self._connect()))

    async def append(self, make_rows: Chainer) -> list[Row]:
        def work(db: sqlite3.Connection) -> list[Row]:
            # The last entry is read inside the write transaction on every batch: another process
            # may have extended the chain since this one's last append.
            db.execute("BEGIN IMMEDIATE")
            try:
                row = db.execute("SELECT id, mac FROM audit_log ORDER BY id DESC LIMIT 1").fetchone()
                rows, content = make_rows(int(row[0]), row[1]) if row else make_rows(0, GENESIS)
                per = self._per_insert
                for i in range(0, len(rows), per):
                    part = rows[i : i + per]
                    db.execute(f"INSERT INTO audit_log VALUES {','.join([_ROW_SQL] * len(part))}",
                               list(chain.from_iterable(part)))
                if content:
                    db.executemany("INSERT INTO audit_content VALUES (?,?,?,?)", content)
                db.execute("COMMIT")
                return rows
            except BaseException:
                db.execute("ROLLBACK")
                raise

        result: list[Row] = await self._run(work)
        return result

    async def page(self, after_id: int, limit: int) -> list[AuditEntry]:
        rows = await self._run(lambda db: db.execute(
            "SELECT id, ts, kind, subject, data, prev, mac FROM audit_log WHERE id > ? ORDER BY id LIMIT ?", (after_id, limit)
        ).fetchall())
        return [_row(r) for r in rows]

    async def last(self) -> AuditEntry | None:
        r = await self._run(lambda db: db.execute(
            "SELECT id, ts, kind, subject, data, prev, mac FROM audit_log ORDER BY id DESC LIMIT 1").fetchone())
        return _row(r) if r else None

    async def subject(self, user: str) -> tuple[str, str] | None:
        r = await self._run(lambda db: db.execute("SELECT salt, pseudonym FROM audit_subjects WHERE user_id = ?", (user,)).fetchone())
        return (r[0], r[1]) if r else None

    async def add_subject(self, user: str, salt: str, pseudonym: str) -> tuple[str, str]:
        def work(db: sqlite3.Connection) -> tuple[str, str]:
            db.execute("INSERT OR IGNORE INTO audit_subjects VALUES (?,?,?)", (user, salt, pseudonym))
            r = db.execute("SELECT salt, pseudonym FROM audit_subjects WHERE user_id = ?", (user,)).fetchone()
            return (r[0], r[1])

        result: tuple[str, str] = await self._run(work)
        return result

    async def erase_subject(self, user: str, pseudonym: str) -> int:
        def work(db: sqlite3.Connection) -> int:
            n = db.execute("DELETE FROM audit_content WHERE subject = ?", (pseudonym,)).rowcount
            db.execute("DELETE FROM audit_subjects WHERE user_id = ?", (user,))
            return int(n)

        result: int = await self._run(work)
        return result

    async def by_subject(self, pseudonym: str) -> list[tuple[AuditEntry, str | None]]:
        rows = await self._run(lambda db: db.execute(
            "SELECT l.id, l.ts, l.kind, l.subject, l.data, l.prev, l.mac, c.content FROM audit_log l"
            " LEFT JOIN audit_content c ON c.entry_id = l.id WHERE l.subject = ? ORDER BY l.id", (pseudonym,)
        ).fetchall())
        return [(_row(r), r[7]) for r in rows]

    async def delete_content_before(self, ts: float) -> int:
        n = await self._run(lambda db: db.execute("DELETE FROM audit_content WHERE ts < ?", (ts,)).rowcount)
        return int(n)

    async def aclose(self) -> None:
        async with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


class PostgresAuditStore:
    """asyncpg pool; appends serialised across processes by a transaction-scoped advisory lock."""

    _LOCK_ID = 0x6C6C6D72  # "llmr"

    def __init__(self, url: str) -> None:
        self.url = url
        self._pool: Any = None
        self._init_lock = asyncio.Lock()

    async def _p(self) -> Any:
        async with self._init_lock:
            if self._pool is None:
                try:
                    import asyncpg
                except ImportError:
                    raise ConfigError("storage.url is PostgreSQL: install the 'postgres' extra (pip install llmrelay[postgres])") from None
                self._pool = await asyncpg.create_pool(self.url, min_size=1, max_size=4)
                async with self._pool.acquire() as c:
                    for stmt in _SCHEMA_POSTGRES:
                        await c.execute(stmt)
            return self._pool

    async def append(self, make_rows: Chainer) -> list[Row]:
        pool = await self._p()
        async with pool.acquire() as c, c.transaction():
            await c.execute("SELECT pg_advisory_xact_lock($1)", self._LOCK_ID)
            row = await c.fetchrow("SELECT id, mac FROM audit_log ORDER BY id DESC LIMIT 1")
            rows, content = make_rows(int(row[0]), row[1]) if row else make_rows(0, GENESIS)
            # One round trip per table for the batch, not one per entry.
            await c.executemany("INSERT INTO audit_log VALUES ($1,$2,$3,$4,$5,$6,$7)", rows)
            if content:
                await c.executemany("INSERT INTO audit_content VALUES ($1,$2,$3,$4)", content)
            return rows

    async def page(self, after_id: int, limit: int) -> list[AuditEntry]:
        pool = await self._p()
        rows = await pool.fetch(
            "SELECT id, ts, kind, subject, data, prev, mac FROM audit_log WHERE id > $1 ORDER BY id LIMIT $2", after_id, limit)
        return [_row(tuple(r)) for r in rows]

    async def last(self) -> AuditEntry | None:
        pool = await self._p()
        r = await pool.fetchrow("SELECT id, ts, kind, subject, data, prev, mac FROM audit_log ORDER BY id DESC LIMIT 1")
        return _row(tuple(r)) if r else None

    async def subject(self, user: str) -> tuple[str, str] | None:
        pool = await self._p()
        r = await pool.fetchrow("SELECT salt, pseudonym FROM audit_subjects WHERE user_id = $1", user)
        return (r[0], r[1]) if r else None

    async def add_subject(self, user: str, salt: str, pseudonym: str) -> tuple[str, str]:
        pool = await self._p()
        await pool.execute("INSERT INTO audit_subjects VALUES ($1,$2,$3) ON CONFLICT (user_id) DO NOTHING", user, salt, pseudonym)
        r = await pool.fetchrow("SELECT salt, pseudonym FROM audit_subjects WHERE user_id = $1", user)
        return (r[0], r[1])

    async def erase_subject(self, user: str, pseudonym: str) -> int:
        pool = await self._p()
        async with pool.acquire() as c, c.transaction():
            status = await c.execute("DELETE FROM audit_content WHERE subject = $1", pseudonym)
            await c.execute("DELETE FROM audit_subjects WHERE user_id = $1", user)
        return int(status.split()[-1])

    async def by_subject(self, pseudonym: str) -> list[tuple[AuditEntry, str | None]]:
        pool = await self._p()
        rows = await pool.fetch(
            "SELECT l.id, l.ts, l.kind, l.subject, l.data, l.prev, l.mac, c.content FROM audit_log l"
            " LEFT JOIN audit_content c ON c.entry_id = l.id WHERE l.subject = $1 ORDER BY l.id", pseudonym)
        return [(_row(tuple(r)), r[7]) for r in rows]

    async def delete_content_before(self, ts: float) -> int:
        pool = await self._p()
        status = await pool.execute("DELETE FROM audit_content WHERE ts < $1", ts)
        return int(status.split()[-1])

    async def aclose(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None


def open_store(url: str) -> AuditStore:
    path = sqlite_path(url)
    if path is not None:
        return SQLiteAuditStore(path)
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresAuditStore(url)
    raise ConfigError(f"storage.url {url!r}: the audit log supports sqlite:/// and postgresql:// URLs")
