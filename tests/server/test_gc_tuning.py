"""``server.gc_freeze`` / ``server.gc_gen0_threshold``: what ``tune_gc`` asks of the collector, that
only the serving process is tuned (``llmrelay serve`` and its workers), never a library user's."""

from __future__ import annotations

import gc
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from pydantic import ValidationError

from llmrelay.config import ServerConfig, Settings
from llmrelay.server import gc_tuning
from llmrelay.server.gc_tuning import FakeGC, tune_gc


def test_freeze_collects_first_then_freezes_and_the_threshold_keeps_the_older_generations() -> None:
    fake = FakeGC()
    fake.threshold = (700, 13, 17)
    assert tune_gc(ServerConfig(gc_freeze=True, gc_gen0_threshold=12_345), gc_module=fake) is True
    assert fake.calls == [("set_threshold", (12_345, 13, 17)), ("collect", ()), ("freeze", ())]


def test_both_off_leaves_the_collector_alone() -> None:
    fake = FakeGC()
    assert tune_gc(ServerConfig(gc_freeze=False, gc_gen0_threshold=None), gc_module=fake) is False
    assert fake.calls == []
    fake = FakeGC()
    assert tune_gc(ServerConfig(gc_freeze=True, gc_gen0_threshold=None), gc_module=fake) is True
    assert fake.calls == [("collect", ()), ("freeze", ())]


def test_config_defaults_and_validation() -> None:
    server = ServerConfig()
    assert server.gc_freeze is True
    assert server.gc_gen0_threshold is not None and server.gc_gen0_threshold > 700
    assert Settings.from_dict({"server": {"gc_gen0_threshold": None}}).server.gc_gen0_threshold is None
    with pytest.raises(ValidationError):
        ServerConfig(gc_gen0_threshold=0)


def test_the_real_collector_in_a_fresh_process() -> None:
    code = textwrap.dedent("""
        import gc
        from llmrelay.config import ServerConfig
        from llmrelay.server.gc_tuning import tune_gc
        gen1, gen2 = gc.get_threshold()[1:]
        assert gc.get_freeze_count() == 0
        tune_gc(ServerConfig(gc_gen0_threshold=4321))
        assert gc.get_threshold() == (4321, gen1, gen2), gc.get_threshold()
        frozen = gc.get_freeze_count()
        assert frozen > 1000, frozen  # the imported package's objects
        # Cycles made after start-up are still collected.
        class Node: pass
        a, b = Node(), Node(); a.other, b.other = b, a
        del a, b
        assert gc.collect() >= 2
        print(frozen)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) > 1000


def test_building_an_app_in_a_library_process_changes_nothing() -> None:
    from llmrelay.relay import Relay
    from llmrelay.server.app import create_app

    before = (gc.get_threshold(), gc.get_freeze_count())
    create_app(Relay({"providers": {"fake": {"kind": "fake"}}, "models": {"m": [{"provider": "fake", "model": "echo"}]},
                      "storage": {"url": "sqlite://:memory:"}}))
    assert (gc.get_threshold(), gc.get_freeze_count()) == before


def _config(tmp_path: Path, server: dict[str, Any]) -> Path:
    path = tmp_path / "llmrelay.yaml"
    path.write_text(yaml.safe_dump({
        "server": server, "storage": {"url": f"sqlite:///{tmp_path / 'l.db'}"},
        "providers": {"fake": {"kind": "fake"}}, "models": {"m": [{"provider": "fake", "model": "echo"}]},
    }))
    return path


def test_serve_tunes_its_own_process_after_building_the_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    from llmrelay.cli import main

    events: list[Any] = []
    monkeypatch.setattr(gc_tuning, "tune_gc", lambda server: events.append(("tune", server.gc_gen0_threshold)))
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: events.append(("run", type(app).__name__)))
    monkeypatch.setattr("llmrelay.ops.logging.configure_logging", lambda conf: None)
    result = CliRunner().invoke(main, ["serve", "--config", str(_config(tmp_path, {"gc_gen0_threshold": 2345}))])
    assert result.exit_code == 0, result.output
    assert events == [("tune", 2345), ("run", "Gateway")]


def test_a_worker_process_app_factory_tunes_its_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from llmrelay.server.app import create_app_from_env

    seen: list[Any] = []
    monkeypatch.setattr(gc_tuning, "tune_gc", lambda server: seen.append((server.gc_freeze, server.gc_gen0_threshold)))
    monkeypatch.setattr("llmrelay.ops.logging.configure_logging", lambda conf: None)
    monkeypatch.setenv("LLMRELAY_CONFIG", str(_config(tmp_path, {"gc_freeze": False, "gc_gen0_threshold": None})))
    create_app_from_env()
    assert seen == [(False, None)]
