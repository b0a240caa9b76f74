"""The batch folds (roll-up sums, repeats) are bit-identical to adding row by row: the same floats
(``==``, not approximately), the same upsert order. The references below are the plain per-row
loops the folds replaced (issue #11); batches have None and -0.0 values, late rows, ties in time,
one big group and many small ones, prompts seen before the batch (inside and outside the window)."""

from __future__ import annotations

import random
from typing import Any

import pytest

from llmrelay.cost import ledger_repeats as rp
from llmrelay.cost import ledger_sql as q
from llmrelay.cost.ledger import LedgerRow

AT = {c: i for i, c in enumerate(q.ROW_COLUMNS)}
WINDOW = 600.0


def _sums_by_reference(rows: list[tuple[Any, ...]], dims: tuple[str, ...]) -> dict[tuple[str, ...], list[float]]:
    acc: dict[tuple[str, ...], list[float]] = {}
    for v in rows:
        m = acc.setdefault(tuple(str(v[AT[d]] or "") for d in dims), [0.0] * 12)
        m[0] += 1
        for i, c in enumerate(("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
                               "reasoning_tokens", "cost_usd", "cost_saved_usd", "unpriced"), start=1):
            m[i] += v[AT[c]] or 0
        m[9] += v[AT["status"]] not in ("ok", "cached", "joined")
        m[10] += v[AT["cache_status"]] == "hit"
        m[11] += v[AT["latency_ms"]] or 0.0
    return acc


def _repeats_reference(values: list[tuple[Any, ...]], last_seen: dict[Any, float]) -> tuple[list[Any], list[Any]]:
    seen, touched = dict(last_seen), {}
    acc: dict[tuple[Any, ...], list[Any]] = {}
    for v in sorted(values, key=lambda v: v[AT["ts"]]):
        if v[AT["status"]] != "ok":
            continue
        ts, model, provider = v[AT["ts"]], v[AT["model"]] or "", v[AT["provider"]] or ""
        for col, kind in rp.KINDS.items():
            h = v[AT[col]]
            if not h:
                continue
            key = (h, kind, model, provider)
            before = seen.get(key)
            if before is not None and 0 <= ts - before <= WINDOW:
                m = acc.setdefault((v[0], kind, h, model, provider), [0, 0.0, 0, 0, 0])
                m[0] += 1
                m[1] += v[AT["cost_usd"]] or 0.0
                m[2] += v[AT["input_tokens"]] or 0
                m[3] += v[AT["cache_read_tokens"]] or 0
                m[4] += v[AT["prefix_tokens"]] or 0
            if before is None or ts > before:
                seen[key] = touched[key] = ts
    return ([(*k, ts) for k, ts in touched.items()],
            [(*k, int(m[0]), float(m[1]), int(m[2]), int(m[3]), int(m[4])) for k, m in acc.items()])


def _batch(seed: int, n: int, spread: int) -> list[tuple[Any, ...]]:
    """``spread`` scales how many distinct keys and prompts there are (1: one group, as a benchmark)."""
    rng = random.Random(seed)
    ts = 1_764_547_000.0   # an hour before a UTC midnight: batches cross a day
    out = []

    def pick(*xs: Any) -> Any:
        return rng.choice(xs[:max(1, min(len(xs), spread))])

    for i in range(n):
        ts += rng.choice((0.0, 0.3, 7.0, 40.0))
        out.append(LedgerRow(
            ts=ts - 300.0 if rng.random() < 0.1 else ts, request_id=f"r{i}",
            status=pick("ok", "cached", "error", "joined"), key_id=pick("k1", None, "k2", "k3"),
            user_id=pick(None, "u1", "", "u2"), team=pick("t", None), model_group=pick("g", None), provider=pick("p", None),
            model=pick("m1", None, "m2"), input_tokens=rng.randrange(4000), output_tokens=rng.randrange(500),
            cache_read_tokens=rng.choice((0, 128)), reasoning_tokens=rng.choice((0, 64)),
            cost_usd=rng.choice((rng.random() / 37, 0.0, -0.0, 1e-5)), cost_saved_usd=rng.random() / 1009,
            unpriced=rng.random() < 0.1, latency_ms=rng.choice((None, rng.random() * 900, -0.0)),
            cache_status=rng.choice(("hit", "off", "miss")),
            prompt_hash=f"h{rng.randrange(3 * spread)}" if rng.random() < 0.9 else None,
            prefix_hash=pick("x", None, "y"), prefix_tokens=rng.choice((0, 300))))
    return q.row_values(out, "UTC")


CASES = [(seed, n, spread) for seed in (1, 2) for n, spread in ((256, 1), (256, 4), (300, 40), (7, 4))]


@pytest.mark.parametrize(("seed", "n", "spread"), CASES)
def test_rollup_sums_equal_row_by_row_addition_exactly(seed: int, n: int, spread: int) -> None:
    values = _batch(seed, n, spread)
    for dims in (*q.ROLLUPS.values(), q.ROLLUP_DIMS):
        got = q._sums_by(values, tuple(AT[d] for d in dims))
        want = _sums_by_reference(values, dims)
        assert list(got) == list(want)   # same keys in the same order (the regrouping adds in it)
        assert got == want and all(repr(got[k]) == repr(want[k]) for k in want)  # -0.0 vs 0.0 too


@pytest.mark.parametrize(("seed", "n", "spread"), CASES)
def test_repeats_equal_the_row_by_row_walk_exactly(seed: int, n: int, spread: int) -> None:
    values = _batch(seed, n, spread)
    rng = random.Random(seed)
    last = {}
    for v in values[: len(values) // 3]:   # known before the batch: recent, stale and in the future
        if v[AT["prompt_hash"]]:
            key = (v[AT["prompt_hash"]], "prompt", v[AT["model"]] or "", v[AT["provider"]] or "")
            last[key] = v[AT["ts"]] + rng.choice((-100.0, -5000.0, 50.0))
    for known in ({}, last):
        seen, repeats = rp.batch_repeats(values, known, WINDOW)
        want_seen, want_repeats = _repeats_reference(values, known)
        assert seen == want_seen and repeats == want_repeats
        assert repr(repeats) == repr(want_repeats)
    assert n < 100 or rp.batch_repeats(values, last, WINDOW)[1]  # the big batches do repeat


def test_batch_values_keep_their_order_in_multi_row_inserts() -> None:
    values = _batch(3, 2 * q.MULTI_ROWS + 5, 4)
    whole, rest = q.multi_row_params(values)
    assert len(whole) == 2 and all(len(p) == q.MULTI_ROWS * len(q.ROW_COLUMNS) for p in whole)
    flat = [x for p in whole for x in p]
    rebuilt = [tuple(flat[i:i + len(q.ROW_COLUMNS)]) for i in range(0, len(flat), len(q.ROW_COLUMNS))]
    assert rebuilt + list(rest) == values
    assert q.INSERT_ROWS.count("?") == q.MULTI_ROWS * len(q.ROW_COLUMNS)
