"""GET /admin/usage (+ /forecast, /recommendations) against a running gateway: the figures equal
the ledger rows the requests left and the costs the gateway reported on each answer."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from ._admin import admin_gateway, chat, db_rows, get
from .conftest import Running

CALLS = [("alice", "m", "hello there"), ("alice", "m", "hello there"), ("alice", "m", "hello there"),
         ("bob", "m", "what is the weather like"), ("bob", "other", "hi"), (None, "other", "one two three four")]


@pytest.fixture(scope="module")
def used(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Running, Path, dict[str | None, float]]]:
    db = tmp_path_factory.mktemp("usage") / "gw.db"
    with admin_gateway(db) as gw:
        spent: dict[str | None, float] = {}
        for user, model, text in CALLS:
            r = chat(gw, user=user, model=model, text=text)
            assert r.status_code == 200, r.text
            spent[user] = spent.get(user, 0.0) + float(r.headers["x-llmrelay-cost-usd"])
        yield gw, db, spent


def test_totals_equal_the_ledger_and_the_reported_costs(used: tuple[Running, Path, dict[str | None, float]]) -> None:
    gw, db, spent = used
    r = get(gw, "/admin/usage?since=1d&by=user")
    assert r.status_code == 200
    rep = r.json()
    ledger = {row["user_id"] or "": row for row in db_rows(
        db, "SELECT user_id, COUNT(*) AS n, SUM(cost_usd) AS cost, SUM(input_tokens) AS inp FROM usage_ledger GROUP BY user_id")}
    assert rep["total"]["requests"] == len(CALLS) == sum(row["n"] for row in ledger.values())
    assert rep["total"]["cost_usd"] == pytest.approx(sum(spent.values()), abs=1e-6)
    assert rep["total"]["cost_usd"] > 0
    by_user = {row["user_id"] or "": row for row in rep["rows"]}
    assert set(by_user) == set(ledger) == {"alice", "bob", ""}
    for user, row in by_user.items():
        assert row["requests"] == ledger[user]["n"]
        assert row["input_tokens"] == ledger[user]["inp"]
        assert row["cost_usd"] == pytest.approx(ledger[user]["cost"], abs=1e-6)
        assert row["cost_usd"] == pytest.approx(spent[user or None], abs=1e-6)


def test_csv_by_group_and_day(used: tuple[Running, Path, dict[str | None, float]]) -> None:
    gw, db, _ = used
    r = get(gw, "/admin/usage?since=7d&by=group,day&format=csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    ledger = {(row["model_group"], row["day"]): row for row in db_rows(
        db, "SELECT model_group, day, COUNT(*) AS n, SUM(cost_usd) AS cost FROM usage_ledger GROUP BY 1, 2")}
    assert {(row["model_group"], row["day"]) for row in rows} == set(ledger)
    for row in rows:
        want = ledger[(row["model_group"], row["day"])]
        assert int(row["requests"]) == want["n"]
        assert float(row["cost_usd"]) == pytest.approx(want["cost"], abs=1e-6)


def test_filters(used: tuple[Running, Path, dict[str | None, float]]) -> None:
    gw, _, spent = used
    alice = get(gw, "/admin/usage?since=1d&by=group&user=alice").json()
    assert alice["total"]["requests"] == 3
    assert alice["total"]["cost_usd"] == pytest.approx(spent["alice"], abs=1e-6)
    other = get(gw, "/admin/usage?since=1d&by=user&group=other").json()
    assert {r["user_id"] or "" for r in other["rows"]} == {"bob", ""}


def test_forecast_and_recommendations(used: tuple[Running, Path, dict[str | None, float]]) -> None:
    gw, db, _ = used
    f = get(gw, "/admin/usage/forecast").json()
    month_sum = db_rows(db, "SELECT SUM(cost_usd) AS c FROM usage_ledger")[0]["c"]
    assert f["month_to_date_usd"] == pytest.approx(month_sum, abs=1e-6)
    assert f["forecast_month_usd"] >= f["month_to_date_usd"] > 0
    assert sum(d["cost_usd"] for d in f["trend"]) == pytest.approx(month_sum, abs=1e-6)

    recs = get(gw, "/admin/usage/recommendations?since=1d").json()
    # alice sent the same prompt three times: the response cache would have answered two of them.
    cache = [r for r in recs["data"] if r["kind"] == "response_cache" and r["count"] == 3]
    assert len(cache) == 1
    one = db_rows(db, "SELECT cost_usd FROM usage_ledger WHERE user_id = 'alice' LIMIT 1")[0]["cost_usd"]
    assert cache[0]["saving_usd"] == pytest.approx(2 * one, abs=1e-6)
    assert recs["total_saving_usd"] == pytest.approx(sum(r["saving_usd"] for r in recs["data"]), abs=1e-6)


def test_paging(used: tuple[Running, Path, dict[str | None, float]]) -> None:
    gw, db, _ = used
    costs = sorted((row["c"] for row in db_rows(
        db, "SELECT SUM(cost_usd) AS c FROM usage_ledger GROUP BY user_id")), reverse=True)
    pages = [get(gw, f"/admin/usage?since=1d&by=user&limit=1&offset={i}").json() for i in range(3)]
    assert [len(p["rows"]) for p in pages] == [1, 1, 1]
    assert [p["rows"][0]["cost_usd"] for p in pages] == pytest.approx(costs, abs=1e-6)
    assert [p["truncated"] for p in pages] == [True, True, False] and pages[0]["groups"] == 3
    assert pages[0]["total"]["requests"] == len(CALLS)


@pytest.mark.parametrize("query", ["since=7x", "by=colour", "format=xml", "since=-1d", "limit=0", "limit=x",
                                   "offset=-1"])
def test_bad_parameters_are_refused(used: tuple[Running, Path, dict[str | None, float]], query: str) -> None:
    r = get(used[0], f"/admin/usage?{query}")
    assert r.status_code == 400
    assert r.json()["error"]["message"]


def test_cli_report_reads_the_same_ledger(used: tuple[Running, Path, dict[str | None, float]], tmp_path: Path) -> None:
    import json

    from click.testing import CliRunner

    from llmrelay.cli import main

    gw, db, _ = used
    config = tmp_path / "llmrelay.yaml"
    config.write_text(json.dumps({"storage": {"url": f"sqlite:///{db}"}}))
    out = CliRunner().invoke(main, ["usage", "report", "--since", "1d", "--by", "user", "--format", "json",
                                    "--config", str(config)])
    assert out.exit_code == 0, out.output
    cli = json.loads(out.output)
    api = get(gw, "/admin/usage?since=1d&by=user").json()
    assert cli["total"]["requests"] == api["total"]["requests"] == len(CALLS)
    assert cli["total"]["cost_usd"] == pytest.approx(api["total"]["cost_usd"], abs=1e-9)
    assert {r["user_id"]: r["cost_usd"] for r in cli["rows"]} == {r["user_id"]: r["cost_usd"] for r in api["rows"]}
