"""Fixtures for the ops tests: a config file on disk and a real gateway (uvicorn on 127.0.0.1, in a
thread) built from it, so reloads, logs, metrics and the dashboard are exercised end to end."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.conftest import serve_asgi

from llmrelay.relay import Relay
from llmrelay.server.app import Gateway, create_app

MASTER = "sk-master-ops-0123456789abcdef"


def ops_config(tmp: Path, **extra: Any) -> dict[str, Any]:
    """A config over the fake provider with a SQLite ledger and audit log in ``tmp``."""
    cfg: dict[str, Any] = {
        "server": {"master_key": MASTER},
        "storage": {"url": f"sqlite:///{tmp / 'ledger.db'}", "ledger_flush_s": 0.05},
        "providers": {"fake": {"kind": "fake", "options": {"chunk_size": 4}}},
        "models": {"m": [{"provider": "fake", "model": "echo"}]},
        "pricing": {"overrides": {"fake/echo": {"input_per_mtok": 1.0, "output_per_mtok": 2.0}}},
        "safety": {"level": "low", "audit_secret": "ops-test-audit-secret"},
    }
    cfg.update(extra)
    return cfg


def write_config(path: Path, cfg: dict[str, Any]) -> None:
    # Write then rename, as deployment tools do, so the watcher never sees half a file.
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    tmp.replace(path)


@dataclass
class Running:
    url: str
    relay: Relay
    app: Gateway
    path: Path


@contextmanager
def serve_file(path: Path, *, watch_interval_s: float = 0.1,
               before: Callable[[Gateway], None] | None = None) -> Iterator[Running]:
    """The gateway for the config file at ``path``, on a free loopback port."""
    relay = Relay.from_file(path)
    app = create_app(relay)
    app.reloader.interval_s = watch_interval_s
    if before is not None:
        before(app)
    with serve_asgi(app) as url:
        yield Running(url, relay, app, path)


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    path = tmp_path / "llmrelay.yaml"
    write_config(path, ops_config(tmp_path))
    return path


def admin_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {MASTER}"}
