"""Fixtures for the gateway tests: a real uvicorn server on 127.0.0.1 (a free port, in a thread),
in front of a Relay over the fake provider and, when available, the simulator's providers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from tests.conftest import serve_asgi

from llmrelay.relay import Relay
from llmrelay.server.app import Gateway, create_app
from llmrelay.server.demo import demo_settings, simulator_available
from llmrelay.testing import FakeProvider

MASTER = "sk-master-test-0123456789"


@dataclass
class Running:
    url: str
    relay: Relay
    app: Gateway

    @property
    def fake(self) -> FakeProvider:
        fake = self.relay.services.providers["fake"]
        assert isinstance(fake, FakeProvider)
        return fake


def base_config(sim_url: str | None = None, **extra: Any) -> dict[str, Any]:
    cfg = demo_settings(sim_url) if sim_url else {"providers": {}, "models": {}}
    cfg["providers"] = {**cfg["providers"], "fake": {"kind": "fake", "options": {"chunk_size": 4}}}
    cfg["models"] = {**cfg["models"], "m": [{"provider": "fake", "model": "echo"}],
                     "other": [{"provider": "fake", "model": "echo"}]}
    cfg["storage"] = {"url": "sqlite://:memory:"}
    cfg.update(extra)
    return cfg


@contextmanager
def serve(config: dict[str, Any]) -> Iterator[Running]:
    relay = Relay(config)
    app = create_app(relay)
    with serve_asgi(app, start_timeout_s=10) as url:
        yield Running(url, relay, app)


@pytest.fixture(scope="session")
def sim_url() -> Iterator[str | None]:
    if not simulator_available():
        yield None
        return
    from llmrelay.simulator import serve_in_thread

    with serve_in_thread() as url:
        yield url


@pytest.fixture(scope="module")
def gateway(sim_url: str | None) -> Iterator[Running]:
    """An open gateway (no master key)."""
    with serve(base_config(sim_url)) as running:
        yield running


@pytest.fixture(scope="module")
def secured(sim_url: str | None) -> Iterator[Running]:
    """A gateway with a master key."""
    with serve(base_config(sim_url, server={"master_key": MASTER})) as running:
        yield running


def sim_groups(running: Running) -> list[str]:
    """The model groups served through the simulator (one per provider kind available)."""
    return [g for g, deps in running.relay.settings.models.items()
            if deps[0].provider.startswith("sim-") and g != "demo-failover"]
