"""``llmrelay cache clear|stats`` against a SQLite cache, and the admin clear function."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import yaml
from click.testing import CliRunner

from llmrelay import Relay
from llmrelay.caching.admin import clear_cache_query
from llmrelay.cli import main
from llmrelay.context import RequestContext
from llmrelay.types import Message

from .conftest import relay_config


def _fill(cfg: dict[str, object]) -> None:
    async def go() -> None:
        async with Relay(cfg) as relay:
            for model in ("m", "m", "other"):
                for q in ("a", "b"):
                    await relay.chat(model=model, messages=[Message.user(q)], temperature=0)
            await relay.services.state["cache.service"][1].drain()

    asyncio.run(go())


def test_cache_clear_by_model_then_all(tmp_path: Path) -> None:
    cfg = relay_config(tmp_path, {"backend": "sqlite", "url": f"sqlite:///{tmp_path / 'c.db'}"})
    path = tmp_path / "llmrelay.yaml"
    path.write_text(yaml.safe_dump(cfg))
    _fill(cfg)
    runner = CliRunner()
    out = runner.invoke(main, ["cache", "stats", "--config", str(path)])
    assert out.exit_code == 0, out.output
    assert orjson.loads(out.output)["entries"] == 4
    out = runner.invoke(main, ["cache", "clear", "--model", "other", "--config", str(path)])
    assert out.exit_code == 0 and "cleared 2 cached answers" in out.output
    out = runner.invoke(main, ["cache", "clear", "--config", str(path)])
    assert out.exit_code == 0 and "cleared 2 cached answers" in out.output


def test_cache_clear_refuses_the_in_process_cache(tmp_path: Path) -> None:
    path = tmp_path / "llmrelay.yaml"
    path.write_text(yaml.safe_dump(relay_config(tmp_path)))
    out = CliRunner().invoke(main, ["cache", "clear", "--config", str(path)])
    assert out.exit_code == 1 and "DELETE /admin/cache" in out.output


async def test_admin_clear_by_query(tmp_path: Path) -> None:
    async with Relay(relay_config(tmp_path)) as relay:
        ctx = RequestContext()
        await relay.chat(model="m", messages=[Message.user("x")], temperature=0, ctx=ctx)
        await relay.chat(model="other", messages=[Message.user("x")], temperature=0)
        assert (await clear_cache_query(relay.services, {"key": ctx.notes["cache.key"]}))["cleared"] == 1
        assert (await clear_cache_query(relay.services, {"model": "m"}))["cleared"] == 0
        assert (await clear_cache_query(relay.services, {}))["cleared"] == 1


async def test_delete_admin_cache_over_http(tmp_path: Path) -> None:
    import httpx

    from llmrelay.server.app import create_app

    cfg = relay_config(tmp_path, server={"master_key": "sk-master"})
    async with Relay(cfg) as relay:
        app = create_app(relay)
        ctx = RequestContext()
        await relay.chat(model="m", messages=[Message.user("x")], temperature=0, ctx=ctx)
        await relay.chat(model="other", messages=[Message.user("x")], temperature=0)
        transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            denied = await client.delete("/admin/cache")
            assert denied.status_code == 401
            auth = {"authorization": "Bearer sk-master"}
            r = await client.delete("/admin/cache", params={"model": "other"}, headers=auth)
            assert r.status_code == 200 and r.json() == {"cleared": 1, "model": "other", "key": None}
            r = await client.delete("/admin/cache", headers=auth)
            assert r.json()["cleared"] == 1
        again = RequestContext()
        await relay.chat(model="m", messages=[Message.user("x")], temperature=0, ctx=again)
        assert again.cache_status == "miss"
