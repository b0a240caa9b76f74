"""The PostgreSQL ledger (``storage.url: postgresql://...``), shared by every gateway instance.

Needs the ``postgres`` extra (asyncpg), imported only when this backend is chosen.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from ..errors import ConfigError
from . import ledger_repeats as r
from . import ledger_sql as q
from .ledger import LedgerRow, UsageQuery
from .periods import day_label

_QMARK = re.compile(r"\?")


def numbered(sql: str) -> str:
    """``?`` placeholders to asyncpg's ``$1, $2...``."""
    counter = iter(range(1, 10_000))
    return _QMARK.sub(lambda _: f"${next(counter)}", sql)


class PostgresLedger:
    def __init__(self, url: str, *, timezone: str = "UTC", min_size: int = 1, max_size: int = 4,
                 repeat_window_s: float = r.WINDOW_S) -> None:
        self.url = url
        self.timezone = timezone
        self.repeat_window_s = repeat_window_s
        self._forgotten = 0.0
        self._sizes = (min_size, max_size)
        self._pool: Any = None

    async def open(self) -> None:
        if self._pool is not None:
            return
        try:
            import asyncpg
        except ImportError:
            raise ConfigError(
                "storage.url is postgresql:// but asyncpg is not installed; pip install 'llmrelay[postgres]'"
            ) from None
        dsn = self.url.replace("postgresql+asyncpg://", "postgresql://")
        self._pool = await asyncpg.create_pool(dsn, min_size=self._sizes[0], max_size=self._sizes[1])
        # Serialise schema creation across instances starting together.
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(7243001)")
            for stmt in (*q.SCHEMA, *r.SCHEMA):
                await conn.execute(stmt)
            for col, kind in q.ADDED_COLUMNS.items():
                await conn.execute(f"ALTER TABLE usage_ledger ADD COLUMN IF NOT EXISTS {col} {kind}")
            # A ledger older than the weekly and monthly roll-ups gets them filled from its daily
            # ones (never empty beside daily history), under the lock above.
            for table in q.COARSE_ROLLUPS:
                if not await conn.fetchval("SELECT to_regclass($1)", table):
                    for stmt in q.coarse_rollup_fill(table, "postgres"):
                        await conn.execute(stmt)

    async def write(self, rows: Sequence[LedgerRow]) -> None:
        await self.open()
        values = q.row_values(rows, self.timezone)
        daily = q.rollups_of(values)
        hashes = r.hashes_of(values)
        newest = max(v[1] for v in values) if values else 0.0
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.executemany(numbered(q.INSERT_ROW), values)
            for table, rows_ in daily.items():
                await conn.executemany(numbered(q.UPSERTS[table]), rows_)
            last: dict[r.Key, float] = {}
            for i in range(0, len(hashes), r.LOOKUP_CHUNK):
                chunk = hashes[i:i + r.LOOKUP_CHUNK]
                for rec in await conn.fetch(numbered(r.lookup_sql(len(chunk))), *chunk):
                    last[(rec["hash"], rec["kind"], rec["model"], rec["provider"])] = rec["ts"]
            seen, repeats = r.batch_repeats(values, last, self.repeat_window_s)
            if seen:
                await conn.executemany(numbered(r.UPSERT_SEEN), seen)
            if repeats:
                await conn.executemany(numbered(r.UPSERT_REPEATS), repeats)
            if newest - self._forgotten > 3600:
                await conn.execute(numbered(r.FORGET_SEEN), newest - self.repeat_window_s)
                self._forgotten = newest

    async def _fetch(self, sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        await self.open()
        async with self._pool.acquire() as conn:
            return [dict(r) for r in await conn.fetch(numbered(sql), *params)]

    async def aggregate(self, query: UsageQuery) -> list[dict[str, Any]]:
        return [_plain(row) for row in await self._fetch(*q.aggregate_sql(query))]

    async def count_groups(self, query: UsageQuery) -> int:
        return int((await self._fetch(*q.count_groups_sql(query)))[0]["n"])

    async def repeated(self, column: str, start: float, min_count: int, limit: int) -> list[dict[str, Any]]:
        sql = r.repeated_sql(column, day_label(start, self.timezone), min_count, limit)
        return [r.shape(_plain(row)) for row in await self._fetch(*sql)]

    async def rows(self, start: float, end: float | None, limit: int) -> list[dict[str, Any]]:
        return await self._fetch(*q.rows_sql(start, end, limit))

    async def count(self) -> int:
        return int((await self._fetch(q.COUNT, ()))[0]["n"])

    async def prune(self, before: float) -> int:
        await self.open()
        async with self._pool.acquire() as conn:
            status = await conn.execute(numbered(q.PRUNE), before)
        return int(status.rsplit(" ", 1)[-1])

    async def aclose(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    # SUM over BIGINT is NUMERIC in PostgreSQL: hand back plain numbers like SQLite does.
    from decimal import Decimal

    return {k: (float(v) if isinstance(v, Decimal) else v) for k, v in row.items()}
