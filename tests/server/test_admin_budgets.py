"""GET /admin/budgets and the emergency brake reset, against a running gateway."""

from __future__ import annotations

from pathlib import Path

import pytest

from ._admin import admin_gateway, chat, db_rows, get, post


def _row(rows: list[dict], scope: str, subject: str) -> dict:
    found = [r for r in rows if r["scope"] == scope and r["id"] == subject]
    assert len(found) == 1, rows
    return found[0]


def test_budgets_reflect_spend(tmp_path: Path) -> None:
    db = tmp_path / "gw.db"
    with admin_gateway(db) as gw:
        key = post(gw, "/admin/keys", {"name": "ci", "user": "carol", "budget_usd": 10, "budget_period": "week"}).json()
        costs = {"alice": 0.0, "carol": 0.0}
        for user, secret in (("alice", None), ("alice", None), ("carol", key["key"])):
            r = chat(gw, user=user, **({"key": secret} if secret else {}))
            assert r.status_code == 200, r.text
            costs[user] += float(r.headers["x-llmrelay-cost-usd"])
        body = get(gw, "/admin/budgets").json()
    rows = body["data"]
    total = db_rows(db, "SELECT SUM(cost_usd) AS c FROM usage_ledger")[0]["c"]
    assert total == pytest.approx(sum(costs.values()), abs=1e-6) and total > 0

    glob = _row(rows, "global", "*")
    assert glob["limit_usd"] == 100 and glob["period"] == "month" and glob["source"] == "config"
    assert glob["spent_usd"] == pytest.approx(total, abs=1e-6)
    # The counter rounds each request up to a micro-dollar; nothing is in flight any more.
    assert glob["counted_usd"] == pytest.approx(total, abs=1e-5)
    assert glob["reserved_usd"] == pytest.approx(0, abs=1e-5)
    assert glob["remaining_usd"] == pytest.approx(100 - glob["counted_usd"], abs=1e-6)
    assert glob["fraction"] == pytest.approx(glob["counted_usd"] / 100, abs=1e-6)

    # The per-user wildcard budget is listed once per user who spent today.
    alice = _row(rows, "user", "alice")
    assert alice["period"] == "day" and alice["limit_usd"] == 50
    assert alice["spent_usd"] == pytest.approx(costs["alice"], abs=1e-6)
    assert _row(rows, "user", "carol")["spent_usd"] == pytest.approx(costs["carol"], abs=1e-6)

    # The key's own budget.
    own = _row(rows, "key", key["id"])
    assert own["source"] == "key" and own["period"] == "week" and own["limit_usd"] == 10
    assert own["spent_usd"] == pytest.approx(costs["carol"], abs=1e-6)
    assert own["remaining_usd"] == pytest.approx(10 - own["counted_usd"], abs=1e-6)
    assert body["brake"] == {"configured": False, "tripped": False, "max_usd": None, "window_s": None}
    assert body["ledger_pending_rows"] == 0


def test_brake_trips_and_an_admin_resets_it(tmp_path: Path) -> None:
    # Each call costs $1 here (2 input and 4 output tokens); the brake allows $2.5 a minute, so the
    # third call trips it and the fourth is refused.
    with admin_gateway(tmp_path / "gw.db", emergency_brake={"max_usd": 2.5, "window_s": 60}) as gw:
        answers = [chat(gw) for _ in range(3)]
        assert [(r.status_code, r.headers["x-llmrelay-cost-usd"]) for r in answers] == [(200, "1.00000000")] * 3
        refused = chat(gw)
        assert refused.status_code == 429 and refused.json()["error"]["code"] == "budget_exceeded"
        state = get(gw, "/admin/budgets").json()["brake"]
        assert state == {"configured": True, "tripped": True, "max_usd": 2.5, "window_s": 60.0}

        reset = post(gw, "/admin/budgets/brake/reset")
        assert reset.status_code == 200
        assert reset.json()["was_tripped"] is True and reset.json()["brake"]["tripped"] is False
        assert chat(gw).status_code == 200
        assert get(gw, "/admin/budgets").json()["brake"]["tripped"] is False
        entries = get(gw, "/admin/audit/entries?kind=admin.brake_reset").json()["data"]
    assert [e["data"] for e in entries] == [{"was_tripped": True}]
