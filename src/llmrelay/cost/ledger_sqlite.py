"""The SQLite ledger (the default): a file in WAL mode, written from one worker thread.

sqlite3 blocks, so every statement runs on a single dedicated thread; the event loop only awaits
the result. WAL lets report queries read while the writer writes.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from operator import itemgetter
from pathlib import Path
from typing import Any, TypeVar

from ..stores.urls import sqlite_path
from . import ledger_repeats as r
from . import ledger_sql as q
from .ledger import LedgerRow, UsageQuery
from .periods import day_label

T = TypeVar("T")


class SQLiteLedger:
    def __init__(self, url: str, *, timezone: str = "UTC", repeat_window_s: float = r.WINDOW_S) -> None:
        self.url = url
        self.path = sqlite_path(url) or ":memory:"
        self.timezone = timezone
        self.repeat_window_s = repeat_window_s
        self._forgotten = 0.0
        self._pool: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None

    async def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        await self.open()
        assert self._pool is not None and self._conn is not None
        conn = self._conn
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, conn)

    async def open(self) -> None:
        if self._pool is not None:
            return
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llmrelay-sqlite-ledger")
        self._conn = await asyncio.get_running_loop().run_in_executor(self._pool, self._connect)

    def _connect(self) -> sqlite3.Connection:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL: a committed batch survives a process crash (the OS has it); only a power
        # cut may lose the last batch, which is the usual trade for a usage log.
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=5000")
        # Under the write lock: worker processes opening one file together must not both see a
        # column missing and both add it ("duplicate column name" stopped a two-worker start).
        conn.execute("BEGIN IMMEDIATE")
        try:
            for stmt in (*q.SCHEMA, *r.SCHEMA):
                conn.execute(stmt)
            have = {row[1] for row in conn.execute("PRAGMA table_info(usage_ledger)")}
            for col, kind in q.ADDED_COLUMNS.items():
                if col not in have:
                    conn.execute(f"ALTER TABLE usage_ledger ADD COLUMN {col} {kind}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        _ensure_coarse_rollups(conn)
        return conn

    async def write(self, rows: Sequence[LedgerRow]) -> None:
        values = q.row_values(rows, self.timezone)
        daily = q.rollups_of(values)
        hashes = r.hashes_of(values)
        newest = max(map(itemgetter(1), values)) if values else 0.0
        whole, rest = q.multi_row_params(values)

        def run(conn: sqlite3.Connection) -> None:
            with conn:
                conn.execute("BEGIN")
                conn.executemany(q.INSERT_ROWS, whole)
                conn.executemany(q.INSERT_ROW, rest)
                for table, rows_ in daily.items():
                    conn.executemany(q.UPSERTS[table], rows_)
                last: dict[r.Key, float] = {}
                for i in range(0, len(hashes), r.LOOKUP_CHUNK):
                    chunk = hashes[i:i + r.LOOKUP_CHUNK]
                    for h, kind, model, provider, ts in conn.execute(r.lookup_sql(len(chunk)), chunk):
                        last[(h, kind, model, provider)] = ts
                seen, repeats = r.batch_repeats(values, last, self.repeat_window_s)
                conn.executemany(r.UPSERT_SEEN, seen)
                conn.executemany(r.UPSERT_REPEATS, repeats)
                if newest - self._forgotten > 3600:
                    conn.execute(r.FORGET_SEEN, (newest - self.repeat_window_s,))
                    self._forgotten = newest

        await self._call(run)

    async def _fetch(self, sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        return await self._call(lambda conn: [dict(r) for r in conn.execute(sql, params).fetchall()])

    async def aggregate(self, query: UsageQuery) -> list[dict[str, Any]]:
        return await self._fetch(*q.aggregate_sql(query))

    async def count_groups(self, query: UsageQuery) -> int:
        return int((await self._fetch(*q.count_groups_sql(query)))[0]["n"])

    async def repeated(self, column: str, start: float, min_count: int, limit: int) -> list[dict[str, Any]]:
        sql = r.repeated_sql(column, day_label(start, self.timezone), min_count, limit)
        return [r.shape(row) for row in await self._fetch(*sql)]

    async def rows(self, start: float, end: float | None, limit: int) -> list[dict[str, Any]]:
        return await self._fetch(*q.rows_sql(start, end, limit))

    async def count(self) -> int:
        return int((await self._fetch(q.COUNT, ()))[0]["n"])

    async def prune(self, before: float) -> int:
        def run(conn: sqlite3.Connection) -> int:
            n = conn.execute(q.PRUNE, (before,)).rowcount
            # Keep the planner's statistics fresh (cheap when nothing changed much).
            conn.execute("PRAGMA optimize")
            return int(n)

        return await self._call(run)

    async def aclose(self) -> None:
        if self._pool is None:
            return
        conn, pool = self._conn, self._pool
        self._conn, self._pool = None, None
        if conn is not None:
            def close(c: sqlite3.Connection = conn) -> None:
                c.execute("PRAGMA optimize")
                c.close()

            await asyncio.get_running_loop().run_in_executor(pool, close)
        pool.shutdown(wait=True)


def _ensure_coarse_rollups(conn: sqlite3.Connection) -> None:
    """Create the weekly and monthly roll-ups, filled from the daily ones, on a ledger older than
    them. Under BEGIN IMMEDIATE: two processes opening the same file must not both fill them."""
    have = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
    if all(conn.execute(have, (t,)).fetchone() for t in q.COARSE_ROLLUPS):
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        for table in q.COARSE_ROLLUPS:
            if not conn.execute(have, (table,)).fetchone():
                for stmt in q.coarse_rollup_fill(table, "sqlite"):
                    conn.execute(stmt)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
