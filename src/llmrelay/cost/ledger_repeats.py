"""The daily roll-up of repeated prompts, kept by the ledger writer in the same batch transaction.

A *repeat* is an answered request whose prompt (``prompt_hash``: what a response cache would
serve) or stable prefix (``prefix_hash``: system prompt and tools, what provider-side prompt caching
discounts) was already sent, to the same model on the same provider, within ``window_s`` (a day by
default) before it. Recommendations read only these rows: a week is a few thousand roll-up rows
rather than every raw request of the week grouped by a hash that is nearly always unique.

Two tables (names and columns fixed here, never from input):

* ``usage_prompts_seen``: when each (hash, kind, model, provider) was last sent; entries older than
  the window are deleted as the ledger's time moves on, so it holds about one window of hashes.
* ``usage_daily_repeats``: per day, kind and hash, the number of repeats and what they cost.

    rows = batch_repeats(values, last_seen, window_s=86400)   # -> (seen upserts, repeat upserts)

Two gateway processes writing the same new prompt in the same instant may each miss the other's
copy (PostgreSQL fleet): the figure is for recommendations, so it is allowed to err low.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import reduce
from operator import add, itemgetter
from typing import Any

from .ledger_sql import ROW_COLUMNS

WINDOW_S = 86400.0
KINDS = {"prompt_hash": "prompt", "prefix_hash": "prefix"}
# Lookups of last-seen times go in chunks of this many hashes (bound parameters per statement).
LOOKUP_CHUNK = 400

SCHEMA: tuple[str, ...] = (
    "CREATE TABLE IF NOT EXISTS usage_prompts_seen (hash TEXT NOT NULL, kind TEXT NOT NULL, model TEXT NOT NULL,"
    " provider TEXT NOT NULL, ts DOUBLE PRECISION NOT NULL, PRIMARY KEY (hash, kind, model, provider))",
    "CREATE INDEX IF NOT EXISTS usage_prompts_seen_ts ON usage_prompts_seen (ts)",
    "CREATE TABLE IF NOT EXISTS usage_daily_repeats (day TEXT NOT NULL, kind TEXT NOT NULL, hash TEXT NOT NULL,"
    " model TEXT NOT NULL, provider TEXT NOT NULL, repeats BIGINT NOT NULL, cost_usd DOUBLE PRECISION NOT NULL,"
    " input_tokens BIGINT NOT NULL, cache_read_tokens BIGINT NOT NULL, prefix_tokens BIGINT NOT NULL,"
    " PRIMARY KEY (day, kind, hash, model, provider))",
)

UPSERT_SEEN = ("INSERT INTO usage_prompts_seen (hash, kind, model, provider, ts) VALUES (?, ?, ?, ?, ?) "
               "ON CONFLICT (hash, kind, model, provider) DO UPDATE SET ts = excluded.ts")
_MEASURES = ("repeats", "cost_usd", "input_tokens", "cache_read_tokens", "prefix_tokens")
UPSERT_REPEATS = (
    f"INSERT INTO usage_daily_repeats (day, kind, hash, model, provider, {', '.join(_MEASURES)}) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (day, kind, hash, model, provider) DO UPDATE SET "
    + ", ".join(f"{m} = usage_daily_repeats.{m} + excluded.{m}" for m in _MEASURES)
)
FORGET_SEEN = "DELETE FROM usage_prompts_seen WHERE ts < ?"

Key = tuple[str, str, str, str]  # (hash, kind, model, provider)


def lookup_sql(n: int) -> str:
    """Last-seen times of ``n`` hashes (any kind, model, provider: filtered in Python)."""
    return f"SELECT hash, kind, model, provider, ts FROM usage_prompts_seen WHERE hash IN ({', '.join('?' * n)})"


_AT = {c: i for i, c in enumerate(ROW_COLUMNS)}
_DAY, _TS, _STATUS, _MODEL, _PROVIDER = (_AT[c] for c in ("day", "ts", "status", "model", "provider"))
_HASHES = tuple((_AT[col], kind) for col, kind in KINDS.items())
_BY_TS = itemgetter(_TS)
_COST, _INPUT, _CACHE_READ, _PREFIX = (itemgetter(_AT[c]) for c in (
    "cost_usd", "input_tokens", "cache_read_tokens", "prefix_tokens"))


def hashes_of(values: Sequence[tuple[Any, ...]]) -> list[str]:
    """The distinct hashes of a batch's answered rows (the ones to look up)."""
    out: dict[str, None] = {}
    for v in values:
        if v[_STATUS] == "ok":
            for at, _ in _HASHES:
                if v[at]:
                    out[v[at]] = None
    return list(out)


Walk = dict[Key, list[tuple[int, tuple[Any, ...]]]]


def _walk(values: Iterable[tuple[Any, ...]]) -> Walk:
    """The answered rows with a hash, per (hash, kind, model, provider), in time order, each with
    its place in the row-by-row walk (row, then kind): where that walk would touch the key."""
    out: Walk = {}
    at = 0
    for v in sorted(values, key=_BY_TS):  # stable: rows at the same instant keep their order
        if v[_STATUS] == "ok":
            model, provider = v[_MODEL] or "", v[_PROVIDER] or ""
            for col, kind in _HASHES:
                h = v[col]
                if h:
                    key = (h, kind, model, provider)
                    rows = out.get(key)
                    if rows is None:
                        out[key] = [(at, v)]
                    else:
                        rows.append((at, v))
                at += 1
        # rows not answered take no place: only the order of places matters
    return out


def batch_repeats(
    values: Iterable[tuple[Any, ...]], last_seen: dict[Key, float], window_s: float = WINDOW_S
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """(last-seen upserts, repeat roll-up upserts) for a batch of ledger rows (``row_values``).

    ``last_seen`` holds what the database knew before this batch; rows are taken in time order,
    so a prompt sent twice within the batch is a repeat too. Each key's rows are walked on their
    own, and the upserts put in the order a walk over all rows would make them (their rowids).
    """
    touched: list[tuple[int, Key, float]] = []
    found: list[tuple[int, tuple[str, str, str, str, str], list[tuple[Any, ...]]]] = []
    for key, rows in _walk(values).items():
        before = last_seen.get(key)
        first_touch = -1
        repeats: dict[str, tuple[int, list[tuple[Any, ...]]]] | None = None  # per day: first place, rows
        for at, v in rows:
            ts = v[_TS]
            if before is not None and 0 <= ts - before <= window_s:
                if repeats is None:
                    repeats = {}
                day = repeats.get(v[_DAY])
                if day is None:
                    day = repeats[v[_DAY]] = (at, [])
                day[1].append(v)
            if before is None or ts > before:
                before = ts
                if first_touch < 0:
                    first_touch = at
        if first_touch >= 0 and before is not None:
            touched.append((first_touch, key, before))
        if repeats is not None:
            h, kind, model, provider = key
            found += [(at, (day, kind, h, model, provider), rows) for day, (at, rows) in repeats.items()]
    touched.sort(key=_FIRST)
    found.sort(key=_FIRST)
    return [(*k, ts) for _, k, ts in touched], [(*k, *_measures(rows)) for _, k, rows in found]


_FIRST = itemgetter(0)


def _measures(rows: list[tuple[Any, ...]]) -> tuple[int, float, int, int, int]:
    # Left to right from zero, as ``m += x or 0`` row by row: a falsy value adds nothing (exact:
    # the running sums start at +0 and so are never -0.0).
    return (len(rows), float(reduce(add, filter(None, map(_COST, rows)), 0.0)),
            int(reduce(add, filter(None, map(_INPUT, rows)), 0)),
            int(reduce(add, filter(None, map(_CACHE_READ, rows)), 0)),
            int(reduce(add, filter(None, map(_PREFIX, rows)), 0)))


def repeated_sql(column: str, first_day: str, min_count: int, limit: int) -> tuple[str, list[Any]]:
    """The costliest repeated prompts (or prefixes) from ``first_day`` on, sent ``min_count`` times
    or more (the first request and its repeats)."""
    kind = KINDS.get(column)
    if kind is None:
        raise ValueError(f"no repeat analysis on {column!r}")
    sql = (
        "SELECT hash, model, provider, SUM(repeats) AS repeats, SUM(cost_usd) AS cost_usd, "
        "SUM(input_tokens) AS input_tokens, SUM(cache_read_tokens) AS cache_read_tokens, "
        "SUM(prefix_tokens) AS prefix_tokens FROM usage_daily_repeats WHERE kind = ? AND day >= ? "
        f"GROUP BY hash, model, provider HAVING SUM(repeats) >= ? ORDER BY SUM(cost_usd) DESC, hash LIMIT {int(limit)}"
    )
    return sql, [kind, first_day, max(1, min_count - 1)]


def shape(row: dict[str, Any]) -> dict[str, Any]:
    """A ``repeated_sql`` row as :meth:`LedgerStore.repeated` returns it."""
    repeats = int(row["repeats"] or 0)
    return {"hash": row["hash"], "model": row["model"] or None, "provider": row["provider"] or None,
            "n": repeats + 1, "repeats": repeats, "cost_usd": float(row["cost_usd"] or 0.0),
            "input_tokens": int(row["input_tokens"] or 0), "cache_read_tokens": int(row["cache_read_tokens"] or 0),
            "prefix_tokens": int(row["prefix_tokens"] or 0) // max(1, repeats)}
