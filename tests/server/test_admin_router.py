"""/admin/router after a failing deployment, and the admin surface's access rules: every admin
route refuses a caller without the master key (401) and a virtual key (403)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from ._admin import admin_gateway, chat, fail_next, get, post
from .conftest import Running

ADMIN_ROUTES = [
    ("GET", "/admin/keys"), ("POST", "/admin/keys"), ("GET", "/admin/keys/key_x"), ("DELETE", "/admin/keys/key_x"),
    ("POST", "/admin/reload"), ("DELETE", "/admin/cache"), ("GET", "/admin/router"),
    ("GET", "/admin/usage"), ("GET", "/admin/usage/forecast"), ("GET", "/admin/usage/recommendations"),
    ("GET", "/admin/budgets"), ("POST", "/admin/budgets/brake/reset"), ("POST", "/admin/budgets/reset-brake"),
    ("GET", "/admin/audit/verify"), ("GET", "/admin/audit/head"), ("GET", "/admin/audit/entries"),
    ("GET", "/admin/privacy/export?user=u"), ("POST", "/admin/privacy/erase"),
]


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    with admin_gateway(tmp_path_factory.mktemp("router") / "gw.db") as running:
        yield running


def test_router_status_after_a_failing_deployment(gw: Running) -> None:
    fail_next(gw, 2)
    served = [chat(gw, model="flaky") for _ in range(3)]
    assert [(r.status_code, r.headers["x-llmrelay-provider"]) for r in served] == [(200, "fake")] * 3
    rows = {r["deployment"]: r for r in get(gw, "/admin/router").json()["data"]}
    broken = rows["broken/echo"]
    # Two failures open the circuit (routing.circuit.failures: 2); the third call went around it.
    assert broken["failures"] == 2 and broken["successes"] == 0 and broken["circuit"] == "open"
    assert "scripted" in broken["last_error"] and broken["retry_in_s"] > 0
    assert rows["fake/echo"]["successes"] >= 3 and rows["fake/echo"]["circuit"] == "closed"
    assert rows["fake/echo"]["latency_ms"] is not None


@pytest.mark.parametrize(("method", "path"), ADMIN_ROUTES)
def test_admin_routes_need_the_master_key(gw: Running, method: str, path: str) -> None:
    key = post(gw, "/admin/keys", {"name": "not-an-admin"}).json()["key"]
    for headers, status in (({}, 401), ({"authorization": "Bearer sk-wrong"}, 401),
                            ({"authorization": f"Bearer {key}"}, 403), ({"x-api-key": key}, 403)):
        r = httpx.request(method, gw.url + path, headers=headers, json={"user": "u", "name": "x"}, timeout=10)
        assert r.status_code == status, (method, path, headers, r.text)
        assert r.json()["error"]["message"]


def test_every_admin_route_is_in_the_openapi_spec(gw: Running) -> None:
    spec = httpx.get(gw.url + "/openapi.json", timeout=10).json()
    for method, path in ADMIN_ROUTES:
        templ = path.split("?")[0].replace("key_x", "{id}")
        assert method.lower() in spec["paths"].get(templ, {}), (method, templ)
    verify = spec["paths"]["/admin/audit/verify"]["get"]["responses"]["200"]
    assert "ok" in verify["content"]["application/json"]["schema"]["properties"]
