"""Auth rules: master key, virtual keys from the admin API, revocation at once, open mode, binding."""

from __future__ import annotations

from pathlib import Path

import httpx
import openai
import pytest
from click.testing import CliRunner

from llmrelay.cli import main
from llmrelay.context import RequestContext
from llmrelay.errors import AuthenticationError, ModelNotFoundError
from llmrelay.keys import Authenticator, KeySpec, MemoryKeyStore
from llmrelay.layers.identity import identify
from llmrelay.server.app import check_bind
from llmrelay.types import ChatRequest, Message

from .conftest import MASTER, Running

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def admin(gw: Running) -> httpx.Client:
    return httpx.Client(base_url=gw.url, headers={"authorization": f"Bearer {MASTER}"}, timeout=10)


def chat(gw: Running, key: str | None, body: dict | None = None, header: str = "authorization") -> httpx.Response:
    headers = {} if key is None else ({header: f"Bearer {key}"} if header == "authorization" else {header: key})
    return httpx.post(gw.url + "/v1/chat/completions", json=body or CHAT, headers=headers, timeout=10)


def test_master_key_required_when_configured(secured: Running) -> None:
    assert chat(secured, None).status_code == 401
    wrong = chat(secured, "sk-wrong")
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_api_key"
    assert chat(secured, MASTER).status_code == 200
    assert chat(secured, MASTER, header="x-api-key").status_code == 200
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=secured.url + "/v1", api_key="nope", max_retries=0).models.list()


def test_virtual_key_lifecycle(secured: Running) -> None:
    with admin(secured) as a:
        made = a.post("/admin/keys", json={"name": "ci", "models": ["m"], "user": "bob", "team": "qa",
                                           "budget_usd": 5, "rpm": 60})
        assert made.status_code == 201
        key_id, key = made.json()["id"], made.json()["key"]
        assert key.startswith("sk-relay-")
        listed = a.get("/admin/keys").json()["data"]
        mine = next(k for k in listed if k["id"] == key_id)
        assert key not in str(listed) and "key_hash" not in mine
        assert mine["models"] == ["m"] and mine["budget_period"] == "month" and mine["team"] == "qa"

        assert chat(secured, key).status_code == 200
        assert chat(secured, key, header="x-api-key").status_code == 200
        other = chat(secured, key, {**CHAT, "model": "other"})
        assert other.status_code == 404 and other.json()["error"]["code"] == "model_not_found"
        models = httpx.get(secured.url + "/v1/models", headers={"authorization": f"Bearer {key}"}).json()
        assert [m["id"] for m in models["data"]] == ["m"]
        # A virtual key is not an admin.
        assert httpx.get(secured.url + "/admin/keys", headers={"authorization": f"Bearer {key}"}).status_code == 403

        assert a.delete(f"/admin/keys/{key_id}").status_code == 200
        refused = chat(secured, key)  # at once: the same process drops its cached lookup
        assert refused.status_code == 401 and "revoked" in refused.json()["error"]["message"]
        assert a.delete("/admin/keys/key_missing").status_code == 404
        assert a.get(f"/admin/keys/{key_id}").json()["revoked"] is True


def test_admin_refuses_bad_bodies_and_callers(secured: Running) -> None:
    with admin(secured) as a:
        assert a.post("/admin/keys", json={"name": "x", "budget_period": "year"}).status_code == 400
        assert a.post("/admin/keys", json={"nme": "typo"}).status_code == 400
        assert a.post("/admin/keys", json={"name": "x", "rpm": "fast"}).status_code == 400
        assert a.post("/admin/keys", json={"name": "x", "expires": "soon"}).status_code == 400
    assert httpx.get(secured.url + "/admin/keys").status_code == 401


def test_expired_key_refused(secured: Running) -> None:
    with admin(secured) as a:
        key = a.post("/admin/keys", json={"name": "old", "expires_at": 1.0}).json()["key"]
    r = chat(secured, key)
    assert r.status_code == 401 and "expired" in r.json()["error"]["message"]


def test_open_gateway_accepts_any_key_or_none(gateway: Running) -> None:
    assert chat(gateway, None).status_code == 200
    assert chat(gateway, "sk-anything-at-all").status_code == 200


def test_ops_endpoints_need_no_key(secured: Running) -> None:
    assert httpx.get(secured.url + "/health/live").json() == {"status": "ok"}
    ready = httpx.get(secured.url + "/health/ready")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    assert b"llmrelay_" in httpx.get(secured.url + "/metrics").content
    assert httpx.get(secured.url + "/openapi.json").json()["openapi"].startswith("3.")


async def test_identity_fills_caller_from_key() -> None:
    auth = Authenticator(MemoryKeyStore(), "master")
    key, secret = await auth.create(KeySpec(name="k", user="ann", team="red", models=("a",), priority="low"))
    ctx = RequestContext(protocol="openai", credential=secret, priority="high")
    await identify(auth, ChatRequest(model="a", messages=(Message.user("x"),)), ctx)
    assert (ctx.key_id, ctx.user, ctx.team, ctx.priority) == (key.id, "ann", "red", "low")
    with pytest.raises(ModelNotFoundError):
        await identify(auth, ChatRequest(model="b", messages=(Message.user("x"),)), RequestContext(protocol="openai", credential=secret))
    with pytest.raises(AuthenticationError):
        await identify(auth, ChatRequest(model="a", messages=()), RequestContext(protocol="anthropic"))
    # In-process library calls carry no credential and are trusted.
    await identify(auth, ChatRequest(model="a", messages=()), RequestContext(protocol="library"))


def test_non_loopback_refused_without_master_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert check_bind("127.0.0.1", None) is None and check_bind("::1", None) is None
    assert check_bind("localhost", None) is None and check_bind("0.0.0.0", "secret") is None
    assert "master key" in (check_bind("0.0.0.0", None) or "")
    monkeypatch.delenv("LLMRELAY_MASTER_KEY", raising=False)
    cfg = tmp_path / "llmrelay.yaml"
    cfg.write_text("providers: {fake: {kind: fake}}\nmodels: {m: [{provider: fake, model: echo}]}\n")
    result = CliRunner().invoke(main, ["serve", "--config", str(cfg), "--host", "0.0.0.0", "--port", "0"])
    assert result.exit_code == 1
    assert "refusing to listen on 0.0.0.0" in result.output
