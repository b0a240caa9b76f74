"""A cache that survives restarts: one SQLite table, written from a worker thread.

Bounded like the memory backend (entries and bytes), but trimmed every ``trim_every`` writes
rather than on each one (oldest entries first), since counting a table costs more than a dict.

    backend = SQLiteBackend("llmrelay-cache.db", max_entries=10_000, max_bytes=256 << 20, clock=clock)
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from ...clock import Clock
from ...stores.urls import sqlite_path as _sqlite_url_path
from .base import CacheStats

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS llmrelay_cache (
    key TEXT PRIMARY KEY, grp TEXT NOT NULL, value BLOB NOT NULL,
    expires_at REAL NOT NULL, created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS llmrelay_cache_grp ON llmrelay_cache (grp);
CREATE INDEX IF NOT EXISTS llmrelay_cache_created ON llmrelay_cache (created_at);
"""

# Keep the newest rows while both the row count and the running byte total stay in bounds.
_TRIM = """
DELETE FROM llmrelay_cache WHERE key IN (
  SELECT key FROM (
    SELECT key, ROW_NUMBER() OVER w AS rn, SUM(length(value) + length(key)) OVER w AS cum
    FROM llmrelay_cache WINDOW w AS (ORDER BY created_at DESC, rowid DESC)
  ) WHERE rn > ? OR cum > ?
)
"""


def sqlite_path(url: str) -> str:
    """``sqlite:///relative.db`` / ``sqlite:////abs/path.db`` / a plain path -> a file path."""
    return _sqlite_url_path(url) or url or ":memory:"


class SQLiteBackend:
    inline = False

    def __init__(self, path: str | Path, max_entries: int, max_bytes: int, clock: Clock,
                 trim_every: int = 64, on_evict: Callable[[int], None] | None = None) -> None:
        self.path = str(path)
        self.max_entries, self.max_bytes = max_entries, max_bytes
        self._clock = clock
        self._trim_every = max(1, trim_every)
        self._on_evict = on_evict
        self._writes = 0
        self.evictions = 0
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(_SCHEMA)
            self._db = db
        return self._db

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        def locked() -> T:
            with self._lock:
                return fn(self._conn(), *args)

        return await asyncio.to_thread(locked)

    async def get(self, key: str) -> bytes | None:
        now = self._clock.time()

        def q(db: sqlite3.Connection) -> bytes | None:
            row = db.execute("SELECT value, expires_at FROM llmrelay_cache WHERE key = ?", (key,)).fetchone()
            if row is None:
                return None
            if row[1] <= now:
                db.execute("DELETE FROM llmrelay_cache WHERE key = ?", (key,))
                return None
            return bytes(row[0])

        return await self._run(q)

    async def set(self, key: str, group: str, value: bytes, ttl_s: float) -> None:
        now = self._clock.time()
        self._writes += 1
        trim = self._writes % self._trim_every == 0

        def q(db: sqlite3.Connection) -> int:
            db.execute("INSERT OR REPLACE INTO llmrelay_cache VALUES (?, ?, ?, ?, ?)",
                       (key, group, value, now + ttl_s, now))
            if not trim:
                return 0
            db.execute("DELETE FROM llmrelay_cache WHERE expires_at <= ?", (now,))
            return db.execute(_TRIM, (self.max_entries, self.max_bytes)).rowcount

        evicted = await self._run(q)
        if evicted > 0:
            self.evictions += evicted
            if self._on_evict is not None:
                self._on_evict(evicted)

    async def delete(self, key: str) -> bool:
        return await self._run(lambda db: db.execute("DELETE FROM llmrelay_cache WHERE key = ?", (key,)).rowcount > 0)

    async def clear(self, group: str | None = None) -> int:
        if group is None:
            return await self._run(lambda db: db.execute("DELETE FROM llmrelay_cache").rowcount)
        return await self._run(lambda db: db.execute("DELETE FROM llmrelay_cache WHERE grp = ?", (group,)).rowcount)

    async def stats(self) -> CacheStats:
        now = self._clock.time()
        row = await self._run(lambda db: db.execute(
            "SELECT COUNT(*), COALESCE(SUM(length(value) + length(key)), 0) FROM llmrelay_cache "
            "WHERE expires_at > ?", (now,)).fetchone())
        return CacheStats(int(row[0]), int(row[1]), self.evictions)

    async def aclose(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
