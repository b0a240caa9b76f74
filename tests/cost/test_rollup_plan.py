"""Whole-day reports answered from monthly, weekly and daily roll-ups equal the raw-row aggregates
(random windows, every report shape, SQLite and PostgreSQL), the plan covers each day once, and
erasure and retention keep every roll-up grain right."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmrelay.cost import ledger_sql as q
from llmrelay.cost.ledger import LedgerStore, LedgerWriter, UsageQuery, open_ledger
from llmrelay.cost.ledger_plan import Part, cover_days, week_of
from llmrelay.cost.privacy import LedgerPrivacy

from .rollup_data import DAYS, FIRST_DAY, SHAPES, TZ, fill, make_rows, planned_and_raw

DATES = st.dates(min_value=date(1999, 1, 1), max_value=date(2101, 12, 31))


def _days_of(part: Part) -> set[date]:
    if part.grain == "day":
        a, b = date.fromisoformat(part.first), date.fromisoformat(part.last)
    elif part.grain == "week":
        a, b = date.fromisoformat(part.first), date.fromisoformat(part.last) + timedelta(days=6)
    else:
        a = date.fromisoformat(part.first + "-01")
        last = date.fromisoformat(part.last + "-01")
        b = (last + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    assert a <= b, part
    return {a + timedelta(days=i) for i in range((b - a).days + 1)}


@given(DATES, st.integers(min_value=0, max_value=800))
def test_the_plan_covers_each_day_of_the_window_exactly_once(first: date, length: int) -> None:
    last = first + timedelta(days=length)
    parts = cover_days(first.isoformat(), last.isoformat()).parts
    seen: list[date] = [d for p in parts for d in _days_of(p)]
    assert len(seen) == len(set(seen)) == length + 1
    assert set(seen) == {first + timedelta(days=i) for i in range(length + 1)}
    for p in parts:
        if p.grain == "week":
            assert date.fromisoformat(p.first).weekday() == 0 == date.fromisoformat(p.last).weekday()
    # Coarse grains are used whenever one fits: at most 6 loose days at each end of each edge piece.
    assert sum(len(_days_of(p)) for p in parts if p.grain == "day") <= 24
    assert len(parts) <= 7


def test_labels_that_are_not_dates_and_empty_windows_read_the_daily_rows() -> None:
    assert cover_days("2000-01-01", "1999-01-01").parts == (Part("day", "2000-01-01", "1999-01-01"),)
    assert cover_days("yesterday", "today").parts == (Part("day", "yesterday", "today"),)
    assert week_of("2026-01-01") == "2025-12-29"


def test_a_long_window_reads_months_and_a_by_day_report_reads_days() -> None:
    sql, params = q.aggregate_sql(UsageQuery(by=("user_id",), days=("2025-10-04", "2026-01-01")))
    assert "usage_monthly_user_month" in sql and "usage_weekly_user_week" in sql and "UNION ALL" in sql
    assert params[:2] == ["2025-11", "2025-12"]
    sql, _ = q.aggregate_sql(UsageQuery(by=("day", "user_id"), days=("2025-10-04", "2026-01-01")))
    assert "monthly" not in sql and "weekly" not in sql


class _Ledger:
    """A filled store and an event loop of its own, for hypothesis's synchronous examples."""

    def __init__(self, url: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.store: LedgerStore = open_ledger(url, timezone=TZ)
        self.run(fill(self.store, make_rows()))

    def run(self, coro):  # type: ignore[no-untyped-def]
        return self.loop.run_until_complete(coro)

    def close(self) -> None:
        self.run(self.store.aclose())
        self.loop.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def filled(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[_Ledger]:
    url = f"sqlite:///{tmp_path / 'l.db'}" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    ledger = _Ledger(url)
    yield ledger
    ledger.close()


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(start=st.integers(min_value=-5, max_value=DAYS + 5), length=st.integers(min_value=0, max_value=DAYS),
       shape=st.sampled_from(SHAPES))
def test_planned_answers_equal_the_raw_rows(filled: _Ledger, start: int, length: int,
                                            shape: tuple[tuple[str, ...], tuple[tuple[str, str], ...]]) -> None:
    by, filters = shape
    first = FIRST_DAY + timedelta(days=start)
    planned, raw = filled.run(planned_and_raw(filled.store, by, filters, first, first + timedelta(days=length)))
    assert planned == raw


async def test_every_grain_holds_the_same_totals_after_retention(tmp_path: Path) -> None:
    store = open_ledger(f"sqlite:///{tmp_path / 'l.db'}", timezone=TZ)
    rows = make_rows()
    await fill(store, rows)
    window = (FIRST_DAY.isoformat(), (FIRST_DAY + timedelta(days=DAYS)).isoformat())
    before = await store.aggregate(UsageQuery(by=("user_id",), days=window, limit=1000))
    cutoff = sorted(r.ts for r in rows)[len(rows) // 2]
    assert await store.prune(cutoff) == len(rows) // 2
    # Retention drops raw rows only; every roll-up grain keeps the history (as the daily ones did).
    assert await store.aggregate(UsageQuery(by=("user_id",), days=window, limit=1000)) == before
    for grain, tables in q.COARSER.items():
        for daily, table in tables.items():
            dims = q.ROLLUPS[daily][1:]
            got = await store._fetch(  # type: ignore[attr-defined]
                f"SELECT {', '.join(dims)}, SUM(requests) AS n, SUM(cost_usd) AS c FROM {table}"
                f" GROUP BY {', '.join(dims)} ORDER BY {', '.join(dims)}", [])
            want = await store._fetch(  # type: ignore[attr-defined]
                f"SELECT {', '.join(dims)}, SUM(requests) AS n, SUM(cost_usd) AS c FROM {daily}"
                f" GROUP BY {', '.join(dims)} ORDER BY {', '.join(dims)}", [])
            assert got == want and got, (grain, table)
    await store.aclose()


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_erasure_leaves_the_user_in_no_roll_up(backend: str, tmp_path: Path,
                                                     request: pytest.FixtureRequest) -> None:
    url = f"sqlite:///{tmp_path / 'l.db'}" if backend == "sqlite" else request.getfixturevalue("postgres_url")
    store = open_ledger(url, timezone=TZ)
    await fill(store, make_rows(600))
    window = (FIRST_DAY.isoformat(), (FIRST_DAY + timedelta(days=DAYS)).isoformat())
    total = await store.aggregate(UsageQuery(days=window))
    writer = LedgerWriter(store)
    writer.acquire()
    assert (await LedgerPrivacy(writer).erase_user("u7"))["unlinked_rows"] > 0
    for table, dims in q.ALL_ROLLUPS.items():
        if "user_id" in dims:
            left = await store._fetch(f"SELECT COUNT(*) AS n FROM {table} WHERE user_id = ?", ["u7"])  # type: ignore[attr-defined]
            erased = await store._fetch(  # type: ignore[attr-defined]
                f"SELECT COUNT(*) AS n FROM {table} WHERE user_id LIKE 'erased-%'", [])
            assert left[0]["n"] == 0 and erased[0]["n"] > 0, table
    by_user = await store.aggregate(UsageQuery(by=("user_id",), days=window))
    assert "u7" not in {r["user_id"] for r in by_user}
    assert await store.aggregate(UsageQuery(days=window)) == total
    await writer.aclose()
