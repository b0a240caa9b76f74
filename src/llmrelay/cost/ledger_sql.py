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
    "unpriced": "INTEGER", "joined": "INTEGER",
}
ROW_COLUMNS: tuple[str, ...] = ("day", *COLUMNS)
# Daily roll-ups, each small because its dimensions are few; a report grouped and filtered only by
# one roll-up's dimensions reads it instead of the raw rows (first match wins).
ROLLUPS: dict[str, tuple[str, ...]] = {
    "usage_daily": ("day", "model_group", "provider", "model", "status"),
    "usage_daily_key": ("day", "key_id", "team"),
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


def aggregate_sql(q: UsageQuery) -> tuple[str, list[Any]]:
    for col in (*q.by, *(c for c, _ in q.filters)):
        if col not in GROUPABLE:
            raise ValueError(f"cannot group or filter usage by {col!r}; use one of {', '.join(sorted(GROUPABLE))}")
    needed = {*q.by, *(c for c, _ in q.filters)}
    rollup = next((t for t, dims in ROLLUPS.items() if needed <= set(dims)), None) if q.days else None
    where: list[str] = []
    params: list[Any] = []
    if rollup is not None:
        assert q.days is not None
        table, agg = rollup, _AGG_DAILY
        where += ["day >= ?", "day <= ?"]
        params += list(q.days)
    else:
        table, agg = "usage_ledger", _AGG_RAW
        where.append("ts >= ?")
        params.append(q.start)
        if q.end is not None:
            where.append("ts < ?")
            params.append(q.end)
    for col, value in q.filters:
        where.append(f"{col} = ?")
        params.append(value)
    order = ROLLUPS.get(table, ())
    # Group in the roll-up's key order, so the primary key delivers the groups without a sort.
    dims = ", ".join(sorted(q.by, key=lambda c: order.index(c) if c in order else len(order)))
    sql = f"SELECT {dims + ', ' if dims else ''}{agg} FROM {table} WHERE {' AND '.join(where)}"
    if q.by:
        sql += f" GROUP BY {dims} ORDER BY cost_usd DESC LIMIT {int(q.limit)}"
    return sql, params


def repeated_sql(column: str, start: float, min_count: int, limit: int) -> tuple[str, list[Any]]:
    if column not in ("prompt_hash", "prefix_hash"):
        raise ValueError(f"no repeat analysis on {column!r}")
    sql = (
        f"SELECT {column} AS hash, model, provider, COUNT(*) AS n, SUM(cost_usd) AS cost_usd, "
        "SUM(input_tokens) AS input_tokens, SUM(cache_read_tokens) AS cache_read_tokens, "
        "MAX(prefix_tokens) AS prefix_tokens "
        f"FROM usage_ledger WHERE ts >= ? AND {column} IS NOT NULL AND status = 'ok' "
        f"GROUP BY {column}, model, provider HAVING COUNT(*) >= ? ORDER BY SUM(cost_usd) DESC LIMIT {int(limit)}"
    )
    return sql, [start, min_count]


def rows_sql(start: float, end: float | None, limit: int) -> tuple[str, list[Any]]:
    sql = f"SELECT {', '.join(ROW_COLUMNS)} FROM usage_ledger WHERE ts >= ?"
    params: list[Any] = [start]
    if end is not None:
        sql += " AND ts < ?"
        params.append(end)
    return sql + f" ORDER BY ts LIMIT {int(limit)}", params


PRUNE = "DELETE FROM usage_ledger WHERE ts < ?"
COUNT = "SELECT COUNT(*) AS n FROM usage_ledger"
