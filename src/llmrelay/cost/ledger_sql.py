"""The SQL the ledger backends share: schema, indexes, roll-ups and queries.

Written once with ``?`` placeholders; a backend converts them to its own style. Column names are
only ever taken from the fixed lists below, never from user input, so queries built here are safe.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import fields
from functools import reduce
from itertools import chain
from operator import add, attrgetter, itemgetter
from typing import Any

from .ledger import COLUMNS, LedgerRow, UsageQuery
from .ledger_plan import Cover, Part, cover_days, week_of
from .periods import period_of

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
# Weekly and monthly roll-ups: each daily one again, keyed by week (its Monday's day label) and by
# month ("YYYY-MM"), both derived from the day label so in the same configured zone, and kept by the
# same batch transaction. A whole-day window is answered from the whole months inside it, the whole
# weeks in the edges, and the days left (ledger_plan): "90 days by user" reads ~13 x 2,000 roll-up
# rows instead of 90 x 2,000.
COARSER: dict[str, dict[str, str]] = {
    "week": {"usage_daily": "usage_weekly", "usage_daily_key": "usage_weekly_key",
             "usage_daily_user_day": "usage_weekly_user_week", "usage_daily_user": "usage_weekly_user"},
    "month": {"usage_daily": "usage_monthly", "usage_daily_key": "usage_monthly_key",
              "usage_daily_user_day": "usage_monthly_user_month", "usage_daily_user": "usage_monthly_user"},
}
COARSE_ROLLUPS: dict[str, tuple[str, ...]] = {
    table: (grain, *ROLLUPS[daily][1:]) for grain, tables in COARSER.items() for daily, table in tables.items()}
ALL_ROLLUPS: dict[str, tuple[str, ...]] = {**ROLLUPS, **COARSE_ROLLUPS}
_MEASURES = ("requests", "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
             "reasoning_tokens", "cost_usd", "cost_saved_usd", "unpriced", "errors", "cache_hits", "latency_ms")
GROUPABLE = frozenset((*ROLLUP_DIMS, "session", "cache_status", "error_code"))

SCHEMA: tuple[str, ...] = (
    "CREATE TABLE IF NOT EXISTS usage_ledger (day TEXT NOT NULL, "
    + ", ".join(f"{c} {_TYPES.get(c, 'TEXT')}" for c in COLUMNS) + ")",
    "CREATE INDEX IF NOT EXISTS usage_ts ON usage_ledger (ts)",
    "CREATE INDEX IF NOT EXISTS usage_key_ts ON usage_ledger (key_id, ts)",
    # Partial: most rows have no user or session (anonymous keys), and every query on them is
    # ``user_id = ?`` / ``session = ?``, which implies NOT NULL, so both SQLite and PostgreSQL
    # still use them; a row without either skips two b-tree inserts (migration 8; issue #11).
    "CREATE INDEX IF NOT EXISTS usage_user_ts ON usage_ledger (user_id, ts) WHERE user_id IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS usage_session_ts ON usage_ledger (session, ts) WHERE session IS NOT NULL",
)
# No index on request_id (nor on the prompt hashes): no query reads rows by them, and an index on a
# random value costs each row a random page, more as the table grows (migration 6 drops them).


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
# The label of a week or month from a day label, in each dialect's SQL.
_GRAIN_SQL = {("sqlite", "week"): "date(day, 'weekday 0', '-6 days')", ("sqlite", "month"): "substr(day, 1, 7)",
              ("postgres", "week"): "to_char(date_trunc('week', day::date), 'YYYY-MM-DD')",
              ("postgres", "month"): "substr(day, 1, 7)"}


def coarse_rollup_fill(table: str, dialect: str) -> tuple[str, ...]:
    """Create a weekly or monthly roll-up filled from its daily one (``dialect``: sqlite or postgres).

    The ledger runs these itself only for a table it does not have yet, in one locked transaction:
    a coarse roll-up must never start empty beside daily ones that already hold history."""
    dims = COARSE_ROLLUPS[table]
    daily = next(d for tables in COARSER.values() for d, t in tables.items() if t == table)
    label = _GRAIN_SQL[(dialect, dims[0])]
    return (*_rollup_ddl(table, dims),
            f"INSERT INTO {table} ({', '.join((*dims, *_MEASURES))}) SELECT {label}, {', '.join(dims[1:])}, "
            f"{', '.join(f'SUM({m})' for m in _MEASURES)} FROM {daily} GROUP BY {label}, {', '.join(dims[1:])}")

INSERT_ROW = f"INSERT INTO usage_ledger ({', '.join(ROW_COLUMNS)}) VALUES ({', '.join('?' * len(ROW_COLUMNS))})"
# Rows per multi-row INSERT on SQLite: one statement step per 32 rows instead of one per row
# (~1.3 us less per row, binding the same values); the rest of a batch goes row by row.
MULTI_ROWS = 32
INSERT_ROWS = INSERT_ROW + f", ({', '.join('?' * len(ROW_COLUMNS))})" * (MULTI_ROWS - 1)


def multi_row_params(values: Sequence[tuple[Any, ...]]) -> tuple[list[tuple[Any, ...]], Sequence[tuple[Any, ...]]]:
    """``values`` as parameters of ``INSERT_ROWS`` (each ``MULTI_ROWS`` rows flattened, in order)
    and the rows left over for ``INSERT_ROW``: the rows, and so their rowids, keep their order."""
    whole = len(values) - len(values) % MULTI_ROWS
    flat = [tuple(chain.from_iterable(values[i:i + MULTI_ROWS])) for i in range(0, whole, MULTI_ROWS)]
    return flat, values[whole:]
UPSERTS: dict[str, str] = {table: _upsert(table, dims) for table, dims in ALL_ROLLUPS.items()}


_BOOLS = frozenset(i for i, f in enumerate(fields(LedgerRow)) if f.type in ("bool", bool))


def _compiled() -> tuple[Callable[[LedgerRow, str], tuple[Any, ...]],
                         Callable[[Sequence[LedgerRow], str], list[tuple[Any, ...]]]]:
    """``(label, *columns)`` of one row and of every row of a batch, booleans as ints, each one
    compiled expression: no list, no per-column loop, no call per row for a batch (as dataclasses
    and namedtuple compile theirs). The names are LedgerRow's own fields, never input."""
    cols = ", ".join(f"int(r.{c})" if i in _BOOLS else f"r.{c}" for i, c in enumerate(COLUMNS))
    one: Callable[[LedgerRow, str], tuple[Any, ...]] = eval(f"lambda r, label: (label, {cols})", {})
    every: Callable[[Sequence[LedgerRow], str], list[tuple[Any, ...]]] = eval(
        f"lambda rows, label: [(label, {cols}) for r in rows]", {})
    return one, every


_ROW_TUPLE, _ROW_TUPLES = _compiled()
_TS_OF = attrgetter("ts")


def row_values(rows: Sequence[LedgerRow], tz: str) -> list[tuple[Any, ...]]:
    """Each row's values after its day label (in ``tz``); the label is worked out once per day in
    the batch (a zone conversion and strftime per row were ~3 us each), and a batch within one
    day (nearly every one) is built in one comprehension."""
    if not rows:
        return []
    day = period_of("day", min(map(_TS_OF, rows)), tz)
    if max(map(_TS_OF, rows)) < day.end:
        return _ROW_TUPLES(rows, day.label)
    out = []
    start = end = 0.0
    label = ""
    as_tuple = _ROW_TUPLE
    for r in rows:
        ts = r.ts
        if not start <= ts < end:
            day = period_of("day", ts, tz)
            start, end, label = day.start, day.end, day.label
        out.append(as_tuple(r, label))
    return out


_POS = {c: i for i, c in enumerate(ROW_COLUMNS)}
# (measure index, row position) of the measures that are plain sums of a column.
_SUMMED = tuple((i, _POS[c]) for i, c in enumerate(
    ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens", "cost_usd",
     "cost_saved_usd", "unpriced"), start=1))


def rollup_values(rows: Iterable[tuple[Any, ...]], dims: tuple[str, ...]) -> list[tuple[Any, ...]]:
    """Aggregate a batch in memory first: one upsert per distinct ``dims`` in the batch."""
    return _upsert_rows(_typed(_sums_by(rows, tuple(_POS[d] for d in dims))))


def _sums_by(rows: Iterable[tuple[Any, ...]], dim_at: tuple[int, ...]) -> dict[tuple[str, ...], list[float]]:
    """The measures of ``rows`` summed per distinct value of the columns at ``dim_at`` (``None``
    and ``""`` are one value). Rows are grouped first (each distinct raw key normalised once),
    then each group's columns are summed in C, in row order: the same floats as adding row by row."""
    key_of = itemgetter(*dim_at)
    groups: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
    by_raw: dict[Any, list[tuple[Any, ...]]] = {}
    for v in rows:
        raw = key_of(v)
        g = by_raw.get(raw)
        if g is None:
            parts = raw if len(dim_at) > 1 else (raw,)
            g = by_raw[raw] = groups.setdefault(tuple([str(x or "") for x in parts]), [])
        g.append(v)
    return {key: _group_sums(g) for key, g in groups.items()}


# Groups this small are summed row by row: a column-wise pass costs ~10 C calls per group.
_COLUMNWISE = 6
_STATUS_AT, _CACHE_AT, _LATENCY_AT = (_POS[c] for c in ("status", "cache_status", "latency_ms"))


def _row_sums(g: list[tuple[Any, ...]]) -> list[float]:
    m = [0.0] * len(_MEASURES)
    for v in g:
        m[0] += 1
        for i, at in _SUMMED:
            m[i] += v[at] or 0
        m[9] += v[_STATUS_AT] not in ("ok", "cached", "joined")
        m[10] += v[_CACHE_AT] == "hit"
        m[11] += v[_LATENCY_AT] or 0.0
    return m


_STATUS_OF, _CACHE_OF, _LATENCY_OF = (itemgetter(_POS[c]) for c in ("status", "cache_status", "latency_ms"))
_SUMMED_OF = tuple((i, itemgetter(at)) for i, at in _SUMMED)
_OK = frozenset(("ok", "cached", "joined")).__contains__


def _total(column: Iterable[Any]) -> float:
    # From 0.0, left to right, like ``m += x or 0``: a falsy value (None, 0, -0.0) adds nothing,
    # and skipping it is exact because the running sum starts at +0.0 and so is never -0.0.
    return reduce(add, filter(None, column), 0.0)


def _group_sums(g: list[tuple[Any, ...]]) -> list[float]:
    if len(g) < _COLUMNWISE:
        return _row_sums(g)
    m = [0.0] * len(_MEASURES)
    m[0] = float(len(g))
    for i, get in _SUMMED_OF:
        m[i] = _total(map(get, g))
    m[9] = float(len(g) - sum(map(_OK, map(_STATUS_OF, g))))
    m[10] = float(list(map(_CACHE_OF, g)).count("hit"))
    m[11] = _total(map(_LATENCY_OF, g))
    return m


def _regrouped(finest: dict[tuple[str, ...], list[Any]], at: tuple[int, ...]) -> dict[tuple[str, ...], list[Any]]:
    """Sums per a coarser key (the positions ``at`` of the finest key), from the finest sums.

    A key's first sums are shared, not copied (most keys of a batch occur once): a repeat makes a
    new list, never adds into one in place. Added in the same order as ever, so the same floats."""
    acc: dict[Any, list[Any]] = {}
    project = itemgetter(*at)
    for key, sums in finest.items():
        k = project(key)
        m = acc.get(k)
        acc[k] = sums if m is None else [a + b for a, b in zip(m, sums, strict=True)]
    if len(at) == 1:  # itemgetter of one position gives the value, not a 1-tuple
        return {(k,): m for k, m in acc.items()}
    return acc


_FLOAT_MEASURES = frozenset(i for i, name in enumerate(_MEASURES) if name in ("cost_usd", "cost_saved_usd", "latency_ms"))
_INT_AT = tuple(i for i in range(len(_MEASURES)) if i not in _FLOAT_MEASURES)


def _typed(acc: dict[tuple[str, ...], list[float]]) -> dict[tuple[str, ...], list[Any]]:
    """The sums as stored: counts and tokens as ints (the float sums of ints are exact, so adding
    the ints later gives what converting the float sum would), money and latency as floats."""
    for m in acc.values():
        for i in _INT_AT:
            m[i] = int(m[i])
    return acc


def _upsert_rows(acc: dict[tuple[str, ...], list[Any]]) -> list[tuple[Any, ...]]:
    # Sorted by key: concurrent writers (several gateways on one PostgreSQL) then take the rows'
    # locks in the same order and cannot deadlock each other.
    return [(*k, *m) for k, m in sorted(acc.items())]


def coarser_values(daily: Iterable[tuple[Any, ...]], grain: str) -> list[tuple[Any, ...]]:
    """A daily roll-up's batch rows (``day`` first) summed into the weekly or monthly rows."""
    acc: dict[tuple[Any, ...], list[Any]] = {}
    labels: dict[str, str] = {}   # a batch holds a day or two: one label computation each
    for v in daily:
        n = len(v) - len(_MEASURES)
        label = labels.get(v[0])
        if label is None:
            label = labels[v[0]] = _label(v[0], grain)
        key = (label, *v[1:n])
        m = acc.get(key)
        if m is None:
            acc[key] = list(v[n:])
        else:
            for i, x in enumerate(v[n:]):
                m[i] += x
    return [(*k, *m) for k, m in sorted(acc.items())]


def _label(day: str, grain: str) -> str:
    return day[:7] if grain == "month" else week_of(day)


def _coarser_all(daily: dict[str, list[tuple[Any, ...]]], days: Iterable[str]) -> dict[str, list[tuple[Any, ...]]]:
    """Every weekly and monthly roll-up's rows from the daily ones. When no two days of the batch
    share a week (a month), each daily row is one coarse row under its label, in the same order
    (labels rise with days): relabelled without summing. Otherwise summed (coarser_values)."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    for grain, tables in COARSER.items():
        labels = {day: _label(day, grain) for day in days}
        if len(set(labels.values())) == len(labels):
            out.update({tables[t]: [(labels[v[0]], *v[1:]) for v in rows] for t, rows in daily.items()})
        else:
            out.update({tables[t]: coarser_values(rows, grain) for t, rows in daily.items()})
    return out


# Every roll-up dimension's row position, and each daily roll-up's dimensions within that key.
_FINEST_AT = tuple(_POS[d] for d in ROLLUP_DIMS)
_PROJECTIONS = {table: tuple(ROLLUP_DIMS.index(d) for d in dims) for table, dims in ROLLUPS.items()}


def rollups_of(values: Sequence[tuple[Any, ...]]) -> dict[str, list[tuple[Any, ...]]]:
    """Every roll-up's upsert rows for a batch of ``row_values``: daily, then weekly and monthly.
    Each row's measures are summed once, per its key over every roll-up's dimensions; the daily
    roll-ups are regrouped from those few sums (was: each roll-up walked every row)."""
    finest = _typed(_sums_by(values, _FINEST_AT))
    daily = {table: _upsert_rows(_regrouped(finest, at)) for table, at in _PROJECTIONS.items()}
    return {**daily, **_coarser_all(daily, {key[0] for key in finest})}


_AGG_RAW = (
    "COUNT(*) AS requests, SUM(input_tokens) AS input_tokens, SUM(output_tokens) AS output_tokens, "
    "SUM(cache_read_tokens) AS cache_read_tokens, SUM(cache_write_tokens) AS cache_write_tokens, "
    "SUM(reasoning_tokens) AS reasoning_tokens, SUM(cost_usd) AS cost_usd, SUM(cost_saved_usd) AS cost_saved_usd, "
    "SUM(unpriced) AS unpriced, SUM(CASE WHEN status IN ('ok','cached','joined') THEN 0 ELSE 1 END) AS errors, "
    "SUM(CASE WHEN cache_status = 'hit' THEN 1 ELSE 0 END) AS cache_hits, SUM(latency_ms) AS latency_ms"
)
_AGG_DAILY = ", ".join(f"SUM({m}) AS {m}" for m in _MEASURES)


Source = tuple[str, list[str], list[Any]]  # a table, its WHERE terms and their parameters


def _parts(q: UsageQuery) -> list[Source]:
    """The tables a query reads, each with its WHERE terms and parameters: the raw rows, or for a
    whole-day window one roll-up that covers the dimensions, read as its monthly rows for the whole
    months inside the window, its weekly rows for the whole weeks in the edges, and its daily rows
    for the days left (ledger_plan.cover_days; a report by day reads the daily rows only)."""
    for col in (*q.by, *(c for c, _ in q.filters)):
        if col not in GROUPABLE:
            raise ValueError(f"cannot group or filter usage by {col!r}; use one of {', '.join(sorted(GROUPABLE))}")
    needed = {*q.by, *(c for c, _ in q.filters)}
    rollup = next((t for t, dims in ROLLUPS.items() if needed <= set(dims)), None) if q.days else None
    filters = [f"{col} = ?" for col, _ in q.filters]
    values = [value for _, value in q.filters]
    if rollup is None:
        where, params = ["ts >= ?"], [q.start]
        if q.end is not None:
            where.append("ts < ?")
            params.append(q.end)
        return [("usage_ledger", where + filters, params + values)]
    assert q.days is not None
    cover = cover_days(*q.days) if "day" not in needed else Cover((Part("day", *q.days),))
    return [(COARSER[p.grain][rollup] if p.grain in COARSER else rollup,
             [f"{p.grain} >= ?", f"{p.grain} <= ?", *filters], [p.first, p.last, *values]) for p in cover.parts]


def _dims(q: UsageQuery, table: str) -> str:
    # Group in the roll-up's key order, so the primary key delivers the groups without a sort.
    order = ROLLUPS.get(table, ())
    return ", ".join(sorted(q.by, key=lambda c: order.index(c) if c in order else len(order)))


def _exact(q: UsageQuery, table: str) -> bool:
    """The query's dimensions and filters are the roll-up's whole key: each row is one group."""
    return bool(q.by) and {*q.by, *(c for c, _ in q.filters)} == set(ROLLUPS.get(table, ("-",)))


def _from(q: UsageQuery, parts: list[Source]) -> tuple[str, str, list[Any]]:
    """The FROM clause (with WHERE), the aggregates over it and its parameters. Several parts are
    one UNION ALL of their rows (the dimensions and measures only), grouped once outside."""
    if len(parts) == 1:
        table, where, params = parts[0]
        return f"{table} WHERE {' AND '.join(where)}", _AGG_DAILY if table in ALL_ROLLUPS else _AGG_RAW, params
    cols = ", ".join((*q.by, *_MEASURES))
    branches = [f"SELECT {cols} FROM {table} WHERE {' AND '.join(where)}" for table, where, _ in parts]
    return f"({' UNION ALL '.join(branches)}) AS u", _AGG_DAILY, [p for _, _, params in parts for p in params]


def aggregate_sql(q: UsageQuery) -> tuple[str, list[Any]]:
    """Totals, or one row per group: the ``limit`` costliest from ``offset`` on (ties broken by
    the dimensions, so pages never overlap)."""
    parts = _parts(q)
    table = parts[0][0]
    dims = _dims(q, table)
    if len(parts) == 1 and _exact(q, table):
        _, where, params = parts[0]
        sql = f"SELECT {dims}, {', '.join(_MEASURES)} FROM {table} WHERE {' AND '.join(where)}"
    else:
        source, agg, params = _from(q, parts)
        sql = f"SELECT {dims + ', ' if dims else ''}{agg} FROM {source}"
        if q.by:
            sql += f" GROUP BY {dims}"
    if q.by:
        sql += f" ORDER BY cost_usd DESC, {dims} LIMIT {int(q.limit)} OFFSET {int(q.offset)}"
    return sql, params


def count_groups_sql(q: UsageQuery) -> tuple[str, list[Any]]:
    """How many groups ``aggregate_sql(q)`` has in all (for paging)."""
    parts = _parts(q)
    table = parts[0][0]
    if len(parts) == 1 and _exact(q, table):
        _, where, params = parts[0]
        return f"SELECT COUNT(*) AS n FROM {table} WHERE {' AND '.join(where)}", params
    source, _, params = _from(q, parts)
    return f"SELECT COUNT(*) AS n FROM (SELECT 1 AS one FROM {source} GROUP BY {_dims(q, table)}) AS g", params


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
