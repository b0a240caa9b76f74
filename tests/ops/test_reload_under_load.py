"""2,000 requests from 20 concurrent clients through a running gateway while its config file is
rewritten five times (a new model group, a price change, an invalid file, a fix, a new group):
no request is lost or fails, every valid change takes effect, the invalid one is refused."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp

from .conftest import admin_headers, ops_config, serve_file, write_config

CLIENTS = 20
PER_CLIENT = 100


async def _client(http: aiohttp.ClientSession, url: str, n: int, results: list[tuple[int, str]]) -> None:
    for i in range(n):
        body = {"model": "m", "messages": [{"role": "user", "content": f"hello {i}"}], "stream": i % 4 == 0}
        async with http.post(f"{url}/v1/chat/completions", json=body, headers=admin_headers()) as r:
            text = await r.text()
            results.append((r.status, text))


async def _wait_reload(gw: Any, after: float) -> None:
    """Until the watcher has acted on a write made at ``after`` (a reload, successful or not)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        last = gw.app.reloader.last
        if last is not None and last.at >= after:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the watcher did not pick up the change")


async def test_reload_under_load_loses_nothing(tmp_path: Path, config_path: Path) -> None:
    cfg = ops_config(tmp_path)
    steps: list[tuple[str, dict[str, Any], bool]] = []
    c1 = {**cfg, "models": {**cfg["models"], "m2": [{"provider": "fake", "model": "echo"}]}}
    steps.append(("add model group m2", c1, True))
    c2 = {**c1, "pricing": {"overrides": {"fake/echo": {"input_per_mtok": 10.0, "output_per_mtok": 20.0}}}}
    steps.append(("price x10", c2, True))
    c3 = {**c2, "routing": {"retries": -1}}
    steps.append(("invalid: negative retries", c3, False))
    steps.append(("fixed", {**c2, "routing": {"retries": 1}}, True))
    c5 = {**c2, "routing": {"retries": 1}, "models": {**c2["models"], "m3": [{"provider": "fake", "model": "echo"}]}}
    steps.append(("add model group m3", c5, True))

    with serve_file(config_path, watch_interval_s=0.05) as gw:
        results: list[tuple[int, str]] = []
        outcomes: list[tuple[str, bool, bool]] = []
        connector = aiohttp.TCPConnector(limit=CLIENTS)
        async with aiohttp.ClientSession(connector=connector) as http:
            load = [asyncio.create_task(_client(http, gw.url, PER_CLIENT, results)) for _ in range(CLIENTS)]
            for name, step_cfg, valid in steps:
                await asyncio.sleep(0.15)
                started = time.time()
                write_config(config_path, step_cfg)
                await _wait_reload(gw, started)
                outcomes.append((name, valid, gw.app.reloader.last.ok))
            await asyncio.gather(*load)
            # After the last step: the new groups answer, and the new price is in force.
            body = {"model": "m3", "messages": [{"role": "user", "content": "priced"}]}
            async with http.post(f"{gw.url}/v1/chat/completions", json=body, headers=admin_headers()) as r:
                assert r.status == 200
                answer = await r.json()
        usage = answer["usage"]
        assert abs(usage["cost"] - (usage["prompt_tokens"] * 10 + usage["completion_tokens"] * 20) / 1e6) < 1e-12

    assert len(results) == CLIENTS * PER_CLIENT
    failures = [(s, t[:200]) for s, t in results if s != 200 or '"error"' in t]
    assert failures == []
    assert [(n, v) for n, v, _ in outcomes] == [(n, ok) for n, v, ok in outcomes]
    assert gw.app.reloader.generation == 4
