"""Degraded modes without a Redis: the circuit, fail_open and fail_closed budgets, readiness.

The Redis URL points at a closed loopback port, so every call fails at once (connection refused)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from llmrelay.clock import ManualClock
from llmrelay.errors import SharedStateUnavailableError
from llmrelay.relay import Relay
from llmrelay.server.app import create_app
from llmrelay.shared_state.redis_health import RedisHealth, RedisUnavailable, guarded

from .conftest import free_port

pytest.importorskip("redis")


class FlakyClient:
    def __init__(self) -> None:
        self.up = False
        self.calls = 0

    async def ping(self) -> bool:
        self.calls += 1
        if not self.up:
            raise ConnectionError("refused")
        return True


async def test_circuit_skips_redis_after_a_failure_and_recovers() -> None:
    clock, client = ManualClock(), FlakyClient()
    health = RedisHealth(client, clock=clock, retry_after_s=1.0, probe_interval_s=0.01)
    with pytest.raises(RedisUnavailable):
        await guarded(health, client.ping)
    assert health.status() == "redis unreachable"
    calls = client.calls
    with pytest.raises(RedisUnavailable):
        await guarded(health, client.ping)  # circuit open: not even tried
    assert client.calls == calls
    client.up = True
    import asyncio

    for _ in range(200):  # the background probe closes the circuit
        if health.up:
            break
        await asyncio.sleep(0.01)
    assert health.up and health.status() is None
    await health.aclose()


def _settings(tmp_path: Path, policy: str) -> dict[str, Any]:
    return {
        "providers": {"fake": {"kind": "fake"}},
        "models": {"m": [{"provider": "fake", "model": "echo"}]},
        "pricing": {"overrides": {"fake/echo": {"input_per_mtok": 1.0, "output_per_mtok": 1.0}}},
        "budgets": [{"scope": "global", "period": "day", "limit_usd": 10.0}],
        "storage": {"url": f"sqlite:///{tmp_path / 'd.db'}"},
        "redis": {"url": f"redis://127.0.0.1:{free_port()}/0", "on_unavailable": policy},
        "safety": {"level": "off"},
    }


@pytest.mark.parametrize("policy", ["fail_open", "fail_closed"])
async def test_dead_redis_policy_and_readiness(tmp_path: Path, policy: str) -> None:
    relay = Relay(_settings(tmp_path, policy))
    app = create_app(relay)
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with relay, httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        app.started = True
        t0 = time.monotonic()
        r = await client.post("/v1/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": "hi"}]})
        assert time.monotonic() - t0 < 2.0
        ready = await client.get("/health/ready")
        metrics = (await client.get("/metrics")).text
    assert "llmrelay_redis_up 0.0" in metrics
    assert ready.json()["degraded"] == "redis unreachable"
    if policy == "fail_open":
        assert r.status_code == 200 and ready.status_code == 200
    else:
        assert r.status_code == 503 and r.json()["error"]["code"] == SharedStateUnavailableError.code
        assert ready.status_code == 503
