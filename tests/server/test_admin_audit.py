"""/admin/audit/verify, /head and /entries against a running gateway; tampering with the SQLite
file directly is detected; every request and admin action lands on the chain."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ._admin import admin_gateway, chat, db_rows, get, post


def test_requests_and_admin_actions_are_on_the_chain(tmp_path: Path) -> None:
    db = tmp_path / "gw.db"
    with admin_gateway(db) as gw:
        secret_text = "my very private prompt about zanzibar"
        answers = [chat(gw, user="dora", text=secret_text), chat(gw, model="other")]
        made = post(gw, "/admin/keys", {"name": "ops", "user": "erin"}).json()
        assert httpx_delete(gw, f"/admin/keys/{made['id']}") == 200
        assert httpx_delete(gw, "/admin/cache") == 200
        verify = get(gw, "/admin/audit/verify").json()
        head = get(gw, "/admin/audit/head").json()
        requests = get(gw, "/admin/audit/entries?kind=request").json()["data"]
        admin = get(gw, "/admin/audit/entries?kind=admin").json()["data"]
        two = get(gw, "/admin/audit/entries?limit=2").json()
        older = get(gw, f"/admin/audit/entries?limit=2&before={two['next_before']}").json()["data"]

    rows = db_rows(db, "SELECT id, kind, subject, data, mac FROM audit_log ORDER BY id")
    assert verify["ok"] is True and verify["checked"] == len(rows) == verify["head_id"]
    assert head == {"id": rows[-1]["id"], "mac": rows[-1]["mac"], "ts": head["ts"]} and verify["head"] == head["mac"]
    # One summary per request, newest first, with the request id and cost but never the prompt.
    assert [e["data"]["request_id"] for e in requests] == [r.headers["x-llmrelay-request-id"] for r in reversed(answers)]
    assert [e["data"]["cost_usd"] for e in requests] == [float(r.headers["x-llmrelay-cost-usd"]) for r in reversed(answers)]
    assert {e["data"]["model"] for e in requests} == {"m", "other"}
    assert all(secret_text not in r["data"] and "dora" not in r["data"] for r in rows)
    # The user appears only as a pseudonym.
    assert requests[1]["subject"].startswith("u_") and requests[0]["subject"] is None
    assert [e["kind"] for e in admin] == ["admin.cache_cleared", "admin.key_revoked", "admin.key_created"]
    assert admin[1]["data"] == {"key_id": made["id"]}
    assert [e["id"] for e in two["data"]] == [rows[-1]["id"], rows[-2]["id"]]
    assert [e["id"] for e in older] == [rows[-3]["id"], rows[-4]["id"]]


def httpx_delete(gw: object, path: str) -> int:
    import httpx

    from ._admin import ADMIN

    return httpx.delete(gw.url + path, headers=ADMIN, timeout=10).status_code  # type: ignore[attr-defined]


def test_tampering_is_detected(tmp_path: Path) -> None:
    db = tmp_path / "gw.db"
    with admin_gateway(db) as gw:
        for _ in range(4):
            assert chat(gw, user="frank").status_code == 200
        before = get(gw, "/admin/audit/verify").json()
        head = get(gw, "/admin/audit/head").json()
        assert before["ok"] is True and before["checked"] == 4

        # Edit the cost recorded for the second request, straight in the file.
        conn = sqlite3.connect(db, timeout=5)
        with conn:
            conn.execute("UPDATE audit_log SET data = replace(data, '\"cost_usd\":1.0', '\"cost_usd\":0.0') WHERE id = 2")
        conn.close()
        edited = get(gw, "/admin/audit/verify")
        # 200 with ok false: the check ran; the finding is in the body (documented in /openapi.json).
        assert edited.status_code == 200
        assert edited.json()["ok"] is False and edited.json()["first_bad_id"] == 2
        assert "edited" in edited.json()["reason"] and edited.json()["checked"] == 1

        # Deleting the newest entries is caught against an exported head.
        conn = sqlite3.connect(db, timeout=5)
        with conn:
            conn.execute("UPDATE audit_log SET data = replace(data, '\"cost_usd\":0.0', '\"cost_usd\":1.0') WHERE id = 2")
            conn.execute("DELETE FROM audit_log WHERE id = 4")
        conn.close()
        assert get(gw, "/admin/audit/verify").json()["ok"] is True
        cut = get(gw, f"/admin/audit/verify?head={head['mac']}").json()
        assert cut["ok"] is False and "newest entries deleted" in cut["reason"]
