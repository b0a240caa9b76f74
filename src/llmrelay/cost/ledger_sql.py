"""The SQL the ledger backends share: schema, indexes, roll-ups and queries.

Written once with ``?`` placeholders; a backend converts them to its own style. Column names are
only ever taken from the fixed lists below, never from user input, so queries built here are safe.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from .ledger import COLUMNS, LedgerRow, UsageQuery
from .periods import day_label

_TYPES = {
    "ts": "DOUBLE PRECISION NOT NULL",
    "input_tokens": "BIGINT", "output_tokens": "BIGINT", "cache_read_tokens": "BIGINT",
    "cache_write_tokens": "BIGINT", "reasoning_tokens": "BIGINT", "prefix_tokens": "BIGINT",
    "cost_usd": "DOUBLE PRECISION", "cost_saved_usd": "DOUBLE PRECISION",
    "latency_ms": "DOUBLE PRECISION", "ttft_ms": "DOUBLE PRECISION",
    "unpriced": "INTEGER", "joined": "INTEGER", "estimated": "INTEGER",
}
ROW_COLUMNS: tuple[str, ...] = ("day", *COLUMNS)
# Daily roll-ups, each small because its dimensions are few; a report grouped and filtered only by
# one roll-up's dimensions reads it instead of the raw rows (first match wins).
# A report whose dimensions and filters are exactly one roll-up's key reads its rows as they are,
# without grouping (a "by user, day" month is 60,000 groups: aggregating them was most of its time).
ROLLUPS: dict[str, tuple[str, ...]] = {
    "usage_daily": ("day", "model_group", "provider", "model", "status"),
    "usage_daily_key": ("day", "key_id", "team"),
    "usage_daily_user_day": ("day", "user_id"),
    "usage_daily_user": ("day", "user_id", "team"),
}
ROLLUP_DIMS: tuple[str, ...] = tuple(dict.fromkeys(d for dims in ROLLUPS.values() for d in dims))
_MEASURES = ("requests", "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
             "reasoning_tokens", "cost_usd", "cost_saved_usd", "unpriced", "errors", "cache_hits", "latency_ms")
GROUPABLE = frozenset((*ROLLUP_DIMS, "session", "cache_status", "error_code"))

SCHEMA: tuple[str, ...] = (
    "CREATE TABLE IF NOT EXISTS usage_ledger (day TEXT NOT NULL, "
    + ", ".join(f"{c} {_TYPES.get(c, 'TEXT')}" for c in COLUMNS) + ")",
    "CREATE INDEX IF NOT EXISTS usage_ts ON usage_ledger (ts)",
    "CREATE INDEX IF NOT EXISTS usage_key_ts ON usage_ledger (key_id, ts)",
    "CREATE INDEX IF NOT EXISTS usage_user_ts ON usage_ledger (user_id, ts)",
    "CREATE INDEX IF NOT EXISTS usage_session_ts ON usage_ledger (session, ts)",
    "CREATE INDEX IF NOT EXISTS usage_request ON usage_ledger (request_id)",
)


def _rollup_ddl(table: str, dims: tuple[str, ...]) -> tuple[str, ...]:
    measures = ", ".join(
        f"{m} {'DOUBLE PRECISION' if m in ('cost_usd', 'cost_saved_usd', 'latency_ms') else 'BIGINT'} NOT NULL"
        for m in _MEASURES)
    return (f"CREATE TABLE IF NOT EXISTS {table} ({', '.join(f'{d} TEXT NOT NULL' for d in dims)}, {measures}, "
            f"PRIMARY KEY ({', '.join(dims)}))",)


def _upsert(table: str, dims: tuple[str, ...]) -> str:
    return (
        f"INSERT INTO {table} ({', '.join((*dims, *_MEASURES))}) "
        f"VALUES ({', '.join('?' * (len(dims) + len(_MEASURES)))}) "
        f"ON CONFLICT ({', '.join(dims)}) DO UPDATE SET "
        + ", ".join(f"{m} = {table}.{m} + excluded.{m}" for m in _MEASURES)
    )


SCHEMA = SCHEMA + tuple(stmt for table, dims in ROLLUPS.items() for stmt in _rollup_ddl(table, dims))
INSERT_ROW = f"INSERT INTO usage_ledger ({', '.join(ROW_COLUMNS)}) VALUES ({', '.join('?' * len(ROW_COLUMNS))})"
UPSERTS: dict[str, str] = {table: _upsert(table, dims) for table, dims in ROLLUPS.items()}


def row_values(rows: Sequence[LedgerRow], tz: str) -> list[tuple[Any, ...]]:
    out = []
    for r in rows:
        values = [getattr(r, c) for c in COLUMNS]
        out.append((day_label(r.ts, tz), *(int(v) if isinstance(v, bool) else v for v in values)))
    return out


def rollup_values(rows: Iterable[tuple[Any, ...]], dims: tuple[str, ...]) -> list[tuple[Any, ...]]:
    """Aggregate a batch in memory first: one upsert per distinct ``dims`` in the batch."""
    pos = {c: i for i, c in enumerate(ROW_COLUMNS)}
    acc: dict[tuple[str, ...], list[float]] = {}
    for v in rows:
        key = tuple(str(v[pos[d]] or "") for d in dims)
        m = acc.setdefault(key, [0.0] * len(_MEASURES))
        m[0] += 1
        for i, col in enumerate(("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
                                 "reasoning_tokens", "cost_usd", "cost_saved_usd", "unpriced"), start=1):
            m[i] += v[pos[col]] or 0
        m[9] += v[pos["status"]] not in ("ok", "cached", "joined")
        m[10] += v[pos["cache_status"]] == "hit"
        m[11] += v[pos["latency_ms"]] or 0.0
    return [
        (*k, *(x if _MEASURES[i] in ("cost_usd", "cost_saved_usd", "latency_ms") else int(x) for i, x in enumerate(m)))
        for k, m in acc.items()
    ]


_AGG_RAW = (
    "COUNT(*) AS requests, SUM(input_tokens) AS input_tokens, SUM(output_tokens) AS output_tokens, "
    "SUM(cache_read_tokens) AS cache_read_tokens, SUM(cache_write_tokens) AS cache_write_tokens, "
    "SUM(reasoning_tokens) AS reasoning_tokens, SUM(cost_usd) AS cost_usd, SUM(cost_saved_usd) AS cost_saved_usd, "
    "SUM(unpriced) AS unpriced, SUM(CASE WHEN status IN ('ok','cached','joined') THEN 0 ELSE 1 END) AS errors, "
    "SUM(CASE WHEN cache_status = 'hit' THEN 1 ELSE 0 END) AS cache_hits, SUM(latency_ms) AS latency_ms"
)
_AGG_DAILY = ", ".join(f"SUM({m}) AS {m}" for m in _MEASURES)


def _source(q: UsageQuery) -> tuple[str, list[str], list[Any]]:
    """The table a query reads (a roll-up when the window is whole days and one covers it), with
    its WHERE terms and parameters."""
    for col in (*q.by, *(c for c, _ in q.filters)):
        if col not in GROUPABLE:
            raise ValueError(f"cannot group or filter usage by {col!r}; use one of {', '.join(sorted(GROUPABLE))}")
    needed = {*q.by, *(c for c, _ in q.filters)}
    rollup = next((t for t, dims in ROLLUPS.items() if needed <= set(dims)), None) if q.days else None
    where: list[str] = []
    params: list[Any] = []
    if rollup is not None:
        assert q.days is not None
        table = rollup
        where += ["day >= ?", "day <= ?"]
        params += list(q.days)
    else:
        table = "usage_ledger"
        where.append("ts >= ?")
        params.append(q.start)
        if q.end is not None:
            where.append("ts < ?")
            params.append(q.end)
    for col, value in q.filters:
        where.append(f"{col} = ?")
        params.append(value)
    return table, where, params


def _dims(q: UsageQuery, table: str) -> str:
    # Group in the roll-up's key order, so the primary key delivers the groups without a sort.
    order = ROLLUPS.get(table, ())
    return ", ".join(sorted(q.by, key=lambda c: order.index(c) if c in order else len(order)))


def _exact(q: UsageQuery, table: str) -> bool:
    """The query's dimensions and filters are the roll-up's whole key: each row is one group."""
    return bool(q.by) and {*q.by, *(c for c, _ in q.filters)} == set(ROLLUPS.get(table, ("-",)))


def aggregate_sql(q: UsageQuery) -> tuple[str, list[Any]]:
    """Totals, or one row per group: the ``limit`` costliest from ``offset`` on (ties broken by
    the dimensions, so pages never overlap)."""
    table, where, params = _source(q)
    dims = _dims(q, table)
    if _exact(q, table):
        sql = f"SELECT {dims}, {', '.join(_MEASURES)} FROM {table} WHERE {' AND '.join(where)}"
    else:
        agg = _AGG_DAILY if table in ROLLUPS else _AGG_RAW
        sql = f"SELECT {dims + ', ' if dims else ''}{agg} FROM {table} WHERE {' AND '.join(where)}"
        if q.by:
            sql += f" GROUP BY {dims}"
    if q.by:
        sql += f" ORDER BY cost_usd DESC, {dims} LIMIT {int(q.limit)} OFFSET {int(q.offset)}"
    return sql, params


def count_groups_sql(q: UsageQuery) -> tuple[str, list[Any]]:
    """How many groups ``aggregate_sql(q)`` has in all (for paging)."""
    table, where, params = _source(q)
    if _exact(q, table):
        return f"SELECT COUNT(*) AS n FROM {table} WHERE {' AND '.join(where)}", params
    return (f"SELECT COUNT(*) AS n FROM (SELECT 1 AS one FROM {table} WHERE {' AND '.join(where)}"
            f" GROUP BY {_dims(q, table)}) AS g", params)


def rows_sql(start: float, end: float | None, limit: int) -> tuple[str, list[Any]]:
    sql = f"SELECT {', '.join(ROW_COLUMNS)} FROM usage_ledger WHERE ts >= ?"
    params: list[Any] = [start]
    if end is not None:
        sql += " AND ts < ?"
        params.append(end)
    return sql + f" ORDER BY ts LIMIT {int(limit)}", params


# Columns added to the ledger after its first release, added by the stores themselves when missing
# (SQLite has no ADD COLUMN IF NOT EXISTS for a migration to use on a table the ledger made).
ADDED_COLUMNS: dict[str, str] = {"estimated": "INTEGER"}

PRUNE = "DELETE FROM usage_ledger WHERE ts < ?"
COUNT = "SELECT COUNT(*) AS n FROM usage_ledger"
