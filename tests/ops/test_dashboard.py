"""The dashboard's HTTP side: login sets a signed HttpOnly SameSite=Strict cookie, the data
endpoint needs it (or the master key), and its figures equal the ledger's."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from llmrelay.cost.ledger import UsageQuery
from llmrelay.server.dashboard import COOKIE, check_session, make_session

from .conftest import MASTER, admin_headers, ops_config, serve_file, write_config


def test_session_tokens_are_signed_and_expire() -> None:
    token = make_session(MASTER, now=1000.0, ttl_s=60)
    assert check_session(MASTER, token, now=1030.0)
    assert not check_session(MASTER, token, now=1061.0)
    assert not check_session("another-master-key", token, now=1030.0)
    expiry, nonce, mac = token.split(".")
    assert not check_session(MASTER, f"{int(expiry) + 1000}.{nonce}.{mac}", now=1030.0)
    assert not check_session(MASTER, "garbage", now=1030.0)


async def test_login_cookie_and_data(tmp_path: Path, config_path: Path) -> None:
    cfg = ops_config(tmp_path, budgets=[{"scope": "global", "period": "month", "limit_usd": 1.0}])
    cfg["models"]["n"] = [{"provider": "fake", "model": "echo"}]
    write_config(config_path, cfg)
    with serve_file(config_path, watch_interval_s=3600) as gw:
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar) as http:
            for model, n in (("m", 3), ("n", 2)):
                for i in range(n):
                    body = {"model": model, "messages": [{"role": "user", "content": f"question {i} " * 5}]}
                    async with http.post(f"{gw.url}/v1/chat/completions", json=body, headers=admin_headers()) as r:
                        assert r.status == 200
            async with http.get(f"{gw.url}/dashboard") as r:
                assert r.status == 200 and 'name="key"' in await r.text()
            async with http.get(f"{gw.url}/admin/dashboard/data") as r:
                assert r.status == 403
            async with http.post(f"{gw.url}/dashboard/login", data={"key": "wrong"}, allow_redirects=False) as r:
                assert r.status == 401 and "not the master key" in await r.text()
            async with http.post(f"{gw.url}/dashboard/login", data={"key": MASTER}, allow_redirects=False) as r:
                assert r.status == 303
                cookie = r.headers["set-cookie"]
            assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
            assert MASTER not in cookie
            async with http.get(f"{gw.url}/dashboard") as r:
                page = await r.text()
                assert r.status == 200 and "/dashboard/static/app.js" in page
                assert "default-src 'self'" in r.headers["content-security-policy"]
            async with http.get(f"{gw.url}/dashboard/static/app.js") as r:
                assert r.status == 200 and "text/javascript" in r.headers["content-type"]
            async with http.get(f"{gw.url}/dashboard/static/..%2Fdashboard.py") as r:
                assert r.status == 404
            async with http.get(f"{gw.url}/admin/dashboard/data?hours=24") as r:
                assert r.status == 200
                data = await r.json()
        # The master key in a header works for API clients too.
        async with aiohttp.ClientSession() as http, http.get(f"{gw.url}/admin/dashboard/data",
                                                             headers=admin_headers()) as r:
            assert r.status == 200
        store = gw.relay.services.ledger.store
        by_model = {r["model_group"]: r for r in await store.aggregate(UsageQuery(start=0, by=("model_group",)))}
    usage = data["usage"]
    assert usage["totals"]["requests"] == 5
    shown = {r["name"]: r for r in usage["by_model"]}
    for model in ("m", "n"):
        assert shown[model]["cost_usd"] == by_model[model]["cost_usd"] > 0
        assert shown[model]["requests"] == by_model[model]["requests"]
    assert abs(sum(p["cost_usd"] for p in usage["series"]) - sum(r["cost_usd"] for r in by_model.values())) < 1e-12
    assert usage["latency"]["all"]["n"] == 5 and usage["latency"]["all"]["p50"] > 0
    budget = data["budgets"][0]
    assert abs(budget["spent_usd"] - sum(r["cost_usd"] for r in by_model.values())) < 1e-6
    assert [p["deployment"] for p in data["providers"]] == ["fake/echo"]
    assert data["audit"]["verify"]["ok"] is True
    assert data["config"]["config_error"] is None
