"""/admin/privacy/export and /erase against a running gateway: every store (audit, ledger, keys)
answers for the user, erasure leaves nothing that names them, costs stay and the chain verifies;
the CLI sees the same stores."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from llmrelay.cli import main

from ._admin import admin_gateway, chat, db_rows, get, post


def test_export_erase_round_trip(tmp_path: Path) -> None:
    db = tmp_path / "gw.db"
    with admin_gateway(db) as gw:
        key = post(gw, "/admin/keys", {"name": "greta-laptop", "user": "greta"}).json()
        costs = [float(chat(gw, user="greta").headers["x-llmrelay-cost-usd"]),
                 float(chat(gw, key=key["key"], model="other").headers["x-llmrelay-cost-usd"]),
                 float(chat(gw, user="hans").headers["x-llmrelay-cost-usd"])]
        before = get(gw, "/admin/privacy/export?user=greta").json()
        erased = post(gw, "/admin/privacy/erase", {"user": "greta"})
        after = get(gw, "/admin/privacy/export?user=greta").json()
        hans = get(gw, "/admin/privacy/export?user=hans").json()
        verify = get(gw, "/admin/audit/verify").json()
        total = get(gw, "/admin/usage?since=1d&by=user").json()["total"]["cost_usd"]
        erase_entries = get(gw, "/admin/audit/entries?kind=privacy.erase").json()["data"]
        still_works = chat(gw, key=key["key"])

    stores = before["stores"]
    assert set(stores) == {"audit", "ledger", "keys"}
    # Two requests by greta (one through her key, which carries her user id), one key.
    assert len(stores["ledger"]["rows"]) == 2 and {r["user_id"] for r in stores["ledger"]["rows"]} == {"greta"}
    assert [k["id"] for k in stores["keys"]["keys"]] == [key["id"]]
    assert [e["kind"] for e in stores["audit"]["entries"]] == ["admin.key_created", "request", "request"]

    assert erased.status_code == 200
    assert erased.json()["stores"]["ledger"] == {"unlinked_rows": 2}
    assert erased.json()["stores"]["keys"] == {"unlinked_keys": 1}
    assert erased.json()["stores"]["audit"]["unlinked"] is True
    assert after["stores"]["ledger"]["rows"] == [] and after["stores"]["keys"]["keys"] == []
    assert after["stores"]["audit"]["entries"] == []
    assert len(hans["stores"]["ledger"]["rows"]) == 1
    # Nothing in the file names her any more; the money is all still there; the chain verifies.
    assert db_rows(db, "SELECT COUNT(*) AS n FROM usage_ledger WHERE user_id = 'greta' OR session = 'greta'")[0]["n"] == 0
    assert db_rows(db, "SELECT COUNT(*) AS n FROM virtual_keys WHERE user = 'greta'")[0]["n"] == 0
    # The only entry tied to her now is the access request made after the erasure.
    linked = db_rows(db, "SELECT l.kind FROM audit_log l JOIN audit_subjects s ON s.pseudonym = l.subject "
                         "WHERE s.user_id = 'greta'")
    assert [r["kind"] for r in linked] == ["privacy.export"]
    assert total == pytest.approx(sum(costs), abs=1e-6)
    assert verify["ok"] is True
    assert [e["subject"] for e in erase_entries] == [None] and "greta" not in json.dumps(erase_entries)
    assert still_works.status_code == 200


def test_cli_reads_the_same_stores(tmp_path: Path) -> None:
    db = tmp_path / "gw.db"
    with admin_gateway(db) as gw:
        assert chat(gw, user="ivan").status_code == 200
        assert get(gw, "/admin/audit/verify").json()["ok"] is True
    config = tmp_path / "llmrelay.yaml"
    config.write_text(json.dumps({"storage": {"url": f"sqlite:///{db}"}}))
    runner = CliRunner()
    exported = runner.invoke(main, ["privacy", "export", "--user", "ivan", "--config", str(config)])
    assert exported.exit_code == 0, exported.output
    data = json.loads(exported.output)["stores"]
    assert len(data["ledger"]["rows"]) == 1 and len(data["audit"]["entries"]) == 1
    erased = runner.invoke(main, ["privacy", "erase", "--user", "ivan", "--yes", "--config", str(config)])
    assert erased.exit_code == 0, erased.output
    assert json.loads(erased.output)["stores"]["ledger"] == {"unlinked_rows": 1}
    verified = runner.invoke(main, ["audit", "verify", "--json", "--config", str(config)])
    assert verified.exit_code == 0 and json.loads(verified.output)["ok"] is True
    again = json.loads(runner.invoke(main, ["privacy", "export", "--user", "ivan", "--config", str(config)]).output)
    assert again["stores"]["ledger"]["rows"] == [] and again["stores"]["audit"]["entries"] == []


@pytest.mark.parametrize("body", [{}, {"user": ""}, {"user": 3}, ["greta"]])
def test_erase_needs_a_user(tmp_path: Path, body: object) -> None:
    with admin_gateway(tmp_path / "gw.db") as gw:
        assert post(gw, "/admin/privacy/erase", body).status_code == 400
        assert get(gw, "/admin/privacy/export").status_code == 400
