"""Migration 5 (weekly and monthly roll-ups) on a ledger that already holds history, on SQLite and
PostgreSQL: the new tables are filled from the daily roll-ups, whether the migration or the ledger
itself creates them, and never counted twice."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from llmrelay.cost import ledger_sql as q
from llmrelay.cost.ledger import LedgerRow, LedgerStore, UsageQuery, open_ledger
from llmrelay.stores.migrate import upgrade
from llmrelay.stores.migrations import LATEST

T0 = datetime(2025, 9, 20, tzinfo=UTC).timestamp()
WINDOWS = [("2025-09-20", "2025-12-31"), ("2025-10-04", "2026-01-01"), ("2025-11-01", "2025-11-30"),
           ("2025-10-13", "2025-10-26")]


def _rows(n: int = 900) -> list[LedgerRow]:
    rnd = random.Random(5)
    return [LedgerRow(ts=T0 + rnd.random() * 110 * 86400, request_id=f"r{i}", user_id=f"u{rnd.randrange(9)}",
                      key_id=f"k{rnd.randrange(4)}", team=f"t{rnd.randrange(2)}", model=rnd.choice(("a", "b")),
                      input_tokens=rnd.randrange(100), cost_usd=rnd.randrange(64) / 64) for i in range(n)]


async def _answers(store: LedgerStore) -> list[Any]:
    out = []
    for first, last in WINDOWS:
        for by in (("user_id",), ("key_id", "team"), ("model",)):
            rows = await store.aggregate(UsageQuery(by=by, days=(first, last)))
            out.append(sorted((tuple(r[d] for d in by), r["requests"], r["cost_usd"]) for r in rows))
    return out


async def _raw_answers(store: LedgerStore) -> list[Any]:
    out = []
    for first, last in WINDOWS:
        end = (datetime.fromisoformat(last).replace(tzinfo=UTC) + timedelta(days=1)).timestamp()
        start = datetime.fromisoformat(first).replace(tzinfo=UTC).timestamp()
        for by in (("user_id",), ("key_id", "team"), ("model",)):
            rows = await store.aggregate(UsageQuery(start=start, end=end, by=by))
            out.append(sorted((tuple(r[d] for d in by), r["requests"], r["cost_usd"]) for r in rows))
    return out


async def _exec(store: LedgerStore, *statements: str) -> None:
    for sql in statements:
        await store._fetch(sql, [])  # type: ignore[attr-defined]


async def _as_version_4(url: str) -> None:
    """A ledger with 90+ days of history at schema version 4: daily roll-ups only."""
    await upgrade(url)
    store = open_ledger(url)
    await store.write(_rows())
    await _exec(store, *(f"DROP TABLE {t}" for t in q.COARSE_ROLLUPS),
                "DELETE FROM llmrelay_schema_version WHERE version > 4")
    await store.aclose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'l.db'}"
    found: str = request.getfixturevalue("postgres_url")
    return found


async def test_the_migration_fills_weekly_and_monthly_roll_ups_from_the_daily_ones(url: str) -> None:
    await _as_version_4(url)
    assert await upgrade(url) == list(range(5, LATEST + 1))
    store = open_ledger(url)
    got, want = await _answers(store), await _raw_answers(store)
    assert got == want and all(got)
    await store.aclose()


async def test_a_ledger_opened_before_the_migration_fills_them_itself_and_the_migration_rebuilds(url: str) -> None:
    await _as_version_4(url)
    store = open_ledger(url)   # e.g. `llmrelay usage report` run before the gateway's schema check
    await store.open()
    assert await _answers(store) == await _raw_answers(store)
    await store.write(_rows(50))   # kept in the coarse tables by the same batch
    before = await _answers(store)
    await store.aclose()
    assert await upgrade(url) == list(range(5, LATEST + 1))
    store = open_ledger(url)
    assert await _answers(store) == before == await _raw_answers(store)   # rebuilt, not doubled
    await store.aclose()
