"""A small ledger for the roll-up tests: rows over ~130 days in a zone with DST, written through
the real batch path in batches that mix days, weeks and months.

Costs and latencies are multiples of 1/64 (exact in binary), so any order of summing gives the same
float: the planned answers can be compared with the raw-row aggregates for exact equality."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from llmrelay.cost.ledger import LedgerRow, LedgerStore, UsageQuery

TZ = "America/New_York"
FIRST_DAY = date(2025, 9, 20)
DAYS = 130
# Report shapes: (by, filters). The roll-up picked for each differs (model, key, user-day, user).
SHAPES: list[tuple[tuple[str, ...], tuple[tuple[str, str], ...]]] = [
    ((), ()), (("user_id",), ()), (("user_id", "team"), ()), (("team",), ()), (("key_id",), ()),
    (("key_id", "team"), ()), (("model",), ()), (("provider", "model"), ()), (("model_group", "status"), ()),
    (("user_id",), (("team", "t1"),)), (("model",), (("status", "ok"),)), (("day", "user_id"), ()),
]


def midnight(day: date, tz: str = TZ) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(tz)).timestamp()


def make_rows(n: int = 2400, seed: int = 11) -> list[LedgerRow]:
    rnd = random.Random(seed)
    start, end = midnight(FIRST_DAY), midnight(FIRST_DAY + timedelta(days=DAYS))
    rows = []
    for i in range(n):
        user = rnd.randrange(12)
        rows.append(LedgerRow(
            ts=start + rnd.random() * (end - start), request_id=f"r{i}",
            status=rnd.choice(("ok", "ok", "ok", "error", "cached")),
            key_id=None if user == 0 else f"k{user % 5}", user_id=None if user == 0 else f"u{user}",
            team=None if user < 2 else f"t{user % 3}", model_group=rnd.choice(("fast", "smart")),
            provider=rnd.choice(("p1", "p2")), model=rnd.choice(("m1", "m2", "m3")),
            input_tokens=rnd.randrange(1, 500), output_tokens=rnd.randrange(0, 200),
            cache_read_tokens=rnd.randrange(0, 50), reasoning_tokens=rnd.randrange(0, 20),
            cost_usd=rnd.randrange(0, 64) / 64, cost_saved_usd=rnd.randrange(0, 4) / 64,
            unpriced=rnd.random() < 0.05, latency_ms=rnd.randrange(1, 4000) / 64,
            cache_status=rnd.choice(("off", "miss", "hit"))))
    return rows


async def fill(store: LedgerStore, rows: list[LedgerRow], batch: int = 97) -> None:
    # Out of time order: a batch holds rows of many days, weeks and months.
    for i in range(0, len(rows), batch):
        await store.write(rows[i:i + batch])


def _norm(rows: list[dict[str, Any]], by: tuple[str, ...]) -> dict[tuple[str, ...], dict[str, Any]]:
    """Groups keyed by their dimensions (a missing dimension is "", as the roll-ups store it)."""
    return {tuple(r[d] or "" for d in by): {k: (v or 0) for k, v in r.items() if k not in by} for r in rows}


async def planned_and_raw(store: LedgerStore, by: tuple[str, ...], filters: tuple[tuple[str, str], ...],
                          first: date, last: date) -> tuple[dict[Any, Any], dict[Any, Any]]:
    """The whole-day answer (roll-ups) and the raw-row aggregate over the same instants."""
    planned = await store.aggregate(UsageQuery(by=by, filters=filters, limit=100_000,
                                               days=(first.isoformat(), last.isoformat())))
    raw = await store.aggregate(UsageQuery(start=midnight(first), end=midnight(last + timedelta(days=1)),
                                           by=by, filters=filters, limit=100_000))
    return _norm(planned, by), _norm(raw, by)
