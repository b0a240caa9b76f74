"""The ledger's batch values (day labels worked out once per day, roll-ups by position) equal the
per-row definition: each row's own day label in the zone, and sums per distinct dimensions."""

from __future__ import annotations

import random
from dataclasses import fields

import pytest

from llmrelay.cost import ledger_sql as q
from llmrelay.cost.ledger import COLUMNS, LedgerRow
from llmrelay.cost.periods import day_label


def _rows(seed: int, n: int = 400) -> list[LedgerRow]:
    rng = random.Random(seed)
    ts = 1_700_000_000.0
    out = []
    for i in range(n):
        # Mostly in order (a batch), sometimes back across a midnight (a late row), long gaps too.
        ts += rng.choice((0.5, 37.0, 3600.0 * 5, -3600.0 * 7))
        out.append(LedgerRow(
            ts=ts, request_id=f"r{i}", status=rng.choice(("ok", "cached", "error", "joined", "refused")),
            key_id=rng.choice((None, "k1", "k2")), user_id=rng.choice((None, "u1")), team=rng.choice((None, "t")),
            model_group="m", provider=rng.choice(("p", None)), model="x",
            input_tokens=rng.randrange(100), output_tokens=rng.randrange(50), cost_usd=rng.random() / 100,
            cost_saved_usd=rng.random() / 1000, unpriced=rng.random() < 0.2,
            latency_ms=rng.choice((None, rng.random() * 10)), cache_status=rng.choice(("off", "hit", "miss")),
            joined=rng.random() < 0.1, estimated=rng.random() < 0.1))
    return out


@pytest.mark.parametrize("tz", ["UTC", "America/New_York", "Asia/Kathmandu", "Australia/Lord_Howe"])
@pytest.mark.parametrize("seed", [1, 2])
def test_row_values_are_each_rows_own_day_and_columns(tz: str, seed: int) -> None:
    rows = _rows(seed)
    values = q.row_values(rows, tz)
    bools = {f.name for f in fields(LedgerRow) if f.type in ("bool", bool)}
    for r, v in zip(rows, values, strict=True):
        assert v[0] == day_label(r.ts, tz)
        expected = tuple(int(getattr(r, c)) if c in bools else getattr(r, c) for c in COLUMNS)
        assert v[1:] == expected
        assert all(type(x) is not bool for x in v)


@pytest.mark.parametrize("seed", [3, 4])
def test_rollups_sum_each_group(seed: int) -> None:
    values = q.row_values(_rows(seed), "Europe/Berlin")
    pos = {c: i for i, c in enumerate(q.ROW_COLUMNS)}
    for dims in q.ROLLUPS.values():
        got = {tuple(r[:len(dims)]): r[len(dims):] for r in q.rollup_values(values, dims)}
        groups: dict[tuple[str, ...], list[tuple]] = {}
        for v in values:
            groups.setdefault(tuple(str(v[pos[d]] or "") for d in dims), []).append(v)
        assert set(got) == set(groups)
        for key, members in groups.items():
            m = got[key]
            assert m[0] == len(members)
            assert m[1] == sum(v[pos["input_tokens"]] for v in members)
            assert m[6] == pytest.approx(sum(v[pos["cost_usd"]] for v in members))
            assert m[8] == sum(v[pos["unpriced"]] for v in members)
            assert m[9] == sum(v[pos["status"]] not in ("ok", "cached", "joined") for v in members)
            assert m[10] == sum(v[pos["cache_status"]] == "hit" for v in members)
            assert m[11] == pytest.approx(sum(v[pos["latency_ms"]] or 0.0 for v in members))


@pytest.mark.parametrize("seed", [5, 6])
def test_all_rollups_of_a_batch_equal_each_rollup_summed_alone(seed: int) -> None:
    # rollups_of sums each row once (by every dimension) and regroups; rollup_values walks the rows.
    values = q.row_values(_rows(seed), "UTC")
    out = q.rollups_of(values)
    for table, dims in q.ROLLUPS.items():
        alone = q.rollup_values(values, dims)
        got = out[table]
        assert [r[:len(dims)] for r in got] == [r[:len(dims)] for r in alone]
        for g, a in zip(got, alone, strict=True):
            assert g == pytest.approx(a) and [type(x) for x in g] == [type(x) for x in a]
