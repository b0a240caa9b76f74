"""A group with no key (or no user) reads the same whichever table answers the report: ""
from the daily roll-ups and from the raw rows alike, never 0."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from llmrelay.config import Settings
from llmrelay.cost.analytics import usage_report
from llmrelay.cost.ledger import LedgerRow
from llmrelay.cost.ledger_sqlite import SQLiteLedger


@pytest.mark.parametrize("since", ["7d", "12h"])  # whole days: roll-ups; hours: raw rows
async def test_missing_dimensions_are_empty_strings(tmp_path: Path, since: str) -> None:
    ledger = SQLiteLedger(f"sqlite:///{tmp_path / 'l.db'}")
    now = time.time()
    await ledger.write([LedgerRow(ts=now - 60, request_id="r1", model="m", key_id=None, cost_usd=0.5),
                        LedgerRow(ts=now - 60, request_id="r2", model="m", key_id="k1", cost_usd=0.25)])
    try:
        report = await usage_report(ledger, Settings.from_dict({}), since=since, by=("model", "key"),
                                    now=now, recommend=False)
    finally:
        await ledger.aclose()
    got = {(r["model"], r["key_id"]): r["requests"] for r in report.rows}
    assert got == {("m", ""): 1, ("m", "k1"): 1}
