"""The privacy round trip with every store on a real PostgreSQL server (ledger, keys, audit)."""

from __future__ import annotations

from pathlib import Path

from ._admin import admin_config, chat, get, post
from .conftest import serve


def test_export_erase_on_postgres(postgres_url: str) -> None:
    cfg = admin_config(Path("unused.db"))
    cfg["storage"] = {"url": postgres_url, "ledger_flush_s": 0.05}
    with serve(cfg) as gw:
        key = post(gw, "/admin/keys", {"name": "k", "user": "pia"}).json()
        assert chat(gw, user="pia").status_code == 200
        assert chat(gw, key=key["key"]).status_code == 200
        before = get(gw, "/admin/privacy/export?user=pia").json()["stores"]
        erased = post(gw, "/admin/privacy/erase", {"user": "pia"}).json()["stores"]
        after = get(gw, "/admin/privacy/export?user=pia").json()["stores"]
        verify = get(gw, "/admin/audit/verify").json()
        total = get(gw, "/admin/usage?since=1d").json()["total"]
    assert len(before["ledger"]["rows"]) == 2 and len(before["keys"]["keys"]) == 1
    assert erased["ledger"] == {"unlinked_rows": 2} and erased["keys"] == {"unlinked_keys": 1}
    assert after["ledger"]["rows"] == [] and after["keys"]["keys"] == [] and after["audit"]["entries"] == []
    assert verify["ok"] is True and total["requests"] == 2 and total["cost_usd"] > 0
