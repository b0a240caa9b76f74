"""The reload procedure: valid changes swap in, invalid ones are refused and shown, restart-only
settings are kept and reported; the triggers (file, SIGHUP, /admin/reload) all run it."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import aiohttp
import pytest
from tests.conftest import eventually_async

from llmrelay import Message
from llmrelay.ops.reload import ConfigReloader
from llmrelay.relay import Relay

from .conftest import MASTER, admin_headers, ops_config, serve_file, write_config


async def test_valid_change_swaps_settings_and_keeps_unchanged_providers(tmp_path: Path, config_path: Path) -> None:
    async with Relay.from_file(config_path) as relay:
        fake_before = relay.services.providers["fake"]
        reloader = ConfigReloader(relay)
        cfg = ops_config(tmp_path)
        cfg["models"]["extra"] = [{"provider": "fake", "model": "echo"}]
        write_config(config_path, cfg)
        result = await reloader.reload("test")
        assert result.ok and result.changed and result.generation == 1
        assert "extra" in relay.settings.models
        # The provider's config did not change: the same object (and connection pool) serves.
        assert relay.services.providers["fake"] is fake_before
        answer = await relay.chat(model="extra", messages=[Message.user("hi")])
        assert answer.text == "You said: hi"
        again = await reloader.reload("test")
        assert again.ok and not again.changed and again.generation == 1


async def test_invalid_config_is_refused_logged_and_audited(tmp_path: Path, config_path: Path,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    async with Relay.from_file(config_path) as relay:
        reloader = ConfigReloader(relay)
        running = relay.settings
        cfg = ops_config(tmp_path)
        cfg["models"]["broken"] = [{"provider": "nope", "model": "x"}]
        write_config(config_path, cfg)
        with caplog.at_level("ERROR", logger="llmrelay.ops.reload"):
            result = await reloader.reload("test")
        assert not result.ok
        assert any("no provider named 'nope'" in p for p in result.problems)
        assert relay.settings is running
        assert reloader.status()["config_error"] == list(result.problems)
        assert any("refused" in r.getMessage() for r in caplog.records)
        await relay.services.audit.flush()
        kinds = [e.kind for e in await relay.services.audit.entries()]
        assert "config.reload_failed" in kinds
        # Fixing the file clears the error.
        write_config(config_path, ops_config(tmp_path))
        assert (await reloader.reload("test")).ok
        assert reloader.status()["config_error"] is None


async def test_restart_only_settings_keep_their_running_values(tmp_path: Path, config_path: Path) -> None:
    async with Relay.from_file(config_path) as relay:
        reloader = ConfigReloader(relay)
        cfg = ops_config(tmp_path)
        cfg["server"] = {"master_key": MASTER, "port": 4999}
        cfg["storage"] = {"url": f"sqlite:///{tmp_path / 'other.db'}"}
        cfg["routing"] = {"retries": 5}
        write_config(config_path, cfg)
        result = await reloader.reload("test")
        assert result.ok and result.changed
        assert relay.settings.routing.retries == 5
        assert relay.settings.server.port == 4000
        assert relay.settings.storage.url == f"sqlite:///{tmp_path / 'ledger.db'}"
        assert sorted(n.split(":")[0] for n in result.restart_required) == ["server.port", "storage.url"]
        assert reloader.status()["restart_required"] == list(result.restart_required)


async def test_file_watcher_reloads_on_change(tmp_path: Path, config_path: Path) -> None:
    async with Relay.from_file(config_path) as relay, ConfigReloader(relay, interval_s=0.02, settle_s=0.01) as reloader:
        cfg = ops_config(tmp_path)
        cfg["routing"] = {"retries": 7}
        write_config(config_path, cfg)
        await eventually_async(lambda: reloader.generation == 1, timeout=15)
        assert relay.settings.routing.retries == 7
        assert reloader.last is not None and reloader.last.trigger == "file"


async def test_sighup_reloads(tmp_path: Path, config_path: Path) -> None:
    async with Relay.from_file(config_path) as relay, ConfigReloader(relay, interval_s=3600) as reloader:
        if not reloader._sighup:
            pytest.skip("signal handlers need the main thread of a Unix process")
        cfg = ops_config(tmp_path)
        cfg["routing"] = {"retries": 4}
        write_config(config_path, cfg)
        os.kill(os.getpid(), signal.SIGHUP)
        await eventually_async(lambda: reloader.generation == 1, timeout=15)
        assert relay.settings.routing.retries == 4
        assert reloader.last is not None and reloader.last.trigger == "sighup"


async def test_admin_reload_endpoint_and_readiness(tmp_path: Path, config_path: Path) -> None:
    with serve_file(config_path, watch_interval_s=3600) as gw:
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{gw.url}/admin/reload") as r:
                assert r.status == 401
            cfg = ops_config(tmp_path)
            cfg["routing"] = {"retries": "many"}
            write_config(config_path, cfg)
            async with http.post(f"{gw.url}/admin/reload", headers=admin_headers()) as r:
                assert r.status == 422
                body = await r.json()
            assert not body["ok"] and any("routing.retries" in p for p in body["problems"])
            async with http.get(f"{gw.url}/health/ready") as r:
                ready = await r.json()
            assert r.status == 200 and ready["config_error"] == body["problems"]
            cfg["routing"] = {"retries": 3}
            cfg["server"] = {"master_key": MASTER, "host": "0.0.0.0"}
            write_config(config_path, cfg)
            async with http.post(f"{gw.url}/admin/reload", headers=admin_headers()) as r:
                assert r.status == 200
                body = await r.json()
            assert body["ok"] and body["changed"] and body["restart_required"][0].startswith("server.host")
            async with http.get(f"{gw.url}/health/ready") as r:
                ready = await r.json()
            assert ready["config_error"] is None and ready["restart_required"] == body["restart_required"]
        assert gw.relay.settings.routing.retries == 3
