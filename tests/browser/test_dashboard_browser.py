"""The dashboard in headless Chromium (Playwright): log in with the master key, see the figures the
test's own requests produced (spend per model equals the ledger's), refresh by itself; screenshots
go to test-artifacts/. Skips cleanly without chromium or the playwright package."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.ops.conftest import MASTER, ops_config, serve_file, write_config

from llmrelay.cost.ledger import UsageQuery

CHROMIUM = "/usr/bin/chromium"
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"

pytestmark = pytest.mark.browser
sync_api = pytest.importorskip("playwright.sync_api")
if not os.path.exists(CHROMIUM):
    pytest.skip(f"no chromium at {CHROMIUM}", allow_module_level=True)


def _traffic(url: str) -> None:
    """Requests from several keys, users, teams and models, one of them with an e-mail address."""
    import httpx

    from llmrelay.testing import FakeProvider  # noqa: F401  (the fake provider answers)

    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {MASTER}"}, timeout=30) as http:
        keys = []
        for name, team in (("checkout-service", "payments"), ("search-bot", "search"), ("nightly-batch", "data")):
            r = http.post("/admin/keys", json={"name": name, "team": team})
            assert r.status_code == 201
            keys.append(r.json()["key"])
        plan = [("fast", 0, "alice", 6), ("smart", 0, "bob", 3), ("fast", 1, "carol", 5), ("smart", 2, "dave", 4),
                ("cheap", 2, "erin", 7)]
        for model, k, user, n in plan:
            for i in range(n):
                body = {"model": model, "user": user, "stream": i % 2 == 1,
                        "messages": [{"role": "user", "content": f"summarise report {i} " * (3 + 4 * k)}]}
                r = http.post("/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {keys[k]}"})
                assert r.status_code == 200, r.text
        body = {"model": "fast", "messages": [{"role": "user", "content": "mail me at jane.doe@example.com"}]}
        http.post("/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {keys[0]}"})


def _ledger_by_model(gw: object) -> dict[str, float]:
    async def read() -> dict[str, float]:
        services = gw.relay.services  # type: ignore[attr-defined]
        await services.ledger.flush()
        rows = await services.ledger.store.aggregate(UsageQuery(start=0, by=("model_group",)))
        return {r["model_group"]: float(r["cost_usd"]) for r in rows}

    loop = gw.relay.services.state.get("ops.test.loop")  # type: ignore[attr-defined]
    assert loop is not None
    return asyncio.run_coroutine_threadsafe(read(), loop).result(10)


def _wait(check: Callable[[], bool], timeout_s: float = 20.0) -> None:
    """Poll from Python: the page's CSP forbids the eval that wait_for_function would need."""
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "the page did not get there in time"
        time.sleep(0.1)


def _loaded(page: Any) -> int:
    return int(page.get_attribute("body", "data-loaded") or 0)


def _usd(v: float) -> str:
    return f"${v:.3g}" if abs(v) < 0.01 else f"${v:,.2f}"


def test_dashboard_shows_the_ledger(tmp_path: Path) -> None:
    cfg = ops_config(tmp_path, budgets=[{"scope": "global", "period": "month", "limit_usd": 1.0},
                                        {"scope": "team", "id": "payments", "period": "day", "limit_usd": 5.0}])
    cfg["providers"]["fake"]["options"]["latency_s"] = 0.002
    cfg["models"] = {m: [{"provider": "fake", "model": m}] for m in ("fast", "smart", "cheap")}
    cfg["pricing"] = {"overrides": {"fake/fast": {"input_per_mtok": 0.6, "output_per_mtok": 2.4},
                                    "fake/smart": {"input_per_mtok": 3.0, "output_per_mtok": 15.0},
                                    "fake/cheap": {"input_per_mtok": 0.1, "output_per_mtok": 0.4}}}
    cfg["safety"] = {"level": "moderate", "audit_secret": "browser-test-secret"}
    path = tmp_path / "llmrelay.yaml"
    write_config(path, cfg)
    ARTIFACTS.mkdir(exist_ok=True)

    def remember_loop(app: object) -> None:
        relay = app.relay  # type: ignore[attr-defined]
        original = relay.start

        async def start() -> None:
            relay.services.state["ops.test.loop"] = asyncio.get_running_loop()
            await original()

        relay.start = start

    with serve_file(path, watch_interval_s=3600, before=remember_loop) as gw:
        _traffic(gw.url)
        spend = _ledger_by_model(gw)
        assert set(spend) >= {"fast", "smart", "cheap"}
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM,
                                        args=["--headless", "--no-sandbox", "--disable-gpu",
                                              "--disable-background-networking"])
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1700})
                # Nothing but the gateway may be reached: the page must work offline.
                page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(gw.url)
                           else route.abort())
                page.goto(f"{gw.url}/dashboard")
                page.fill("#key", "not-the-key")
                page.click("#login")
                assert "not the master key" in page.inner_text("body")
                page.fill("#key", MASTER)
                page.click("#login")
                _wait(lambda: _loaded(page) >= 1)
                page.screenshot(path=str(ARTIFACTS / "dashboard-login-ok.png"), full_page=True)
                table = page.inner_text("#by-model")
                for model, cost in spend.items():
                    assert model in table
                    assert _usd(cost) in table, (model, _usd(cost), table)
                assert page.inner_text("#spend-total") == _usd(sum(spend.values()))
                assert "checkout-service" in page.inner_text("#by-key")
                assert "payments" in page.inner_text("#by-team")
                assert "alice" in page.inner_text("#by-user")
                assert page.locator("#spend-chart svg rect").count() >= 3
                assert "closed" in page.inner_text("#providers")
                assert page.inner_text("#audit-status") == "intact"
                # It refreshes by itself: a new request shows up without a reload.
                before = _loaded(page)
                import httpx

                httpx.post(f"{gw.url}/v1/chat/completions", headers={"Authorization": f"Bearer {MASTER}"},
                           json={"model": "smart", "messages": [{"role": "user", "content": "one more"}]})
                # Two more polls (5 s apart, each a ledger flush and an audit verify): generous
                # bounds, as a busy machine slows each poll.
                _wait(lambda: _loaded(page) > before + 1, timeout_s=60)
                total = sum(_ledger_by_model(gw).values())
                _wait(lambda: page.inner_text("#spend-total") == _usd(total), timeout_s=60)
                page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
            finally:
                browser.close()
    if os.environ.get("LLMRELAY_UPDATE_DOCS_SCREENSHOT"):
        (REPO / "docs" / "images").mkdir(parents=True, exist_ok=True)
        shutil.copy(ARTIFACTS / "dashboard.png", REPO / "docs" / "images" / "dashboard.png")
