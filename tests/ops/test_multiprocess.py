"""``llmrelay serve --workers 2``: the workers write their metrics under PROMETHEUS_MULTIPROC_DIR
and any worker's /metrics aggregates all of them (checked by scraping several times over fresh
connections, which the kernel spreads across the two processes)."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from .conftest import ops_config, write_config

REQUESTS = 40


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _requests_total(text: str) -> float:
    return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
               if s.name == "llmrelay_requests_total" and s.labels.get("model") == "m")


@pytest.mark.slow
async def test_two_workers_aggregate_metrics(tmp_path: Path) -> None:
    cfg = ops_config(tmp_path)
    cfg["server"] = {}
    path = tmp_path / "llmrelay.yaml"
    write_config(path, cfg)
    mp_dir = tmp_path / "prom"
    mp_dir.mkdir()
    port = _free_port()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(mp_dir)}
    env.pop("LLMRELAY_MASTER_KEY", None)
    proc = subprocess.Popen(  # noqa: ASYNC220 - started once, before any awaiting
        [sys.executable, "-c", "from llmrelay.cli import main; main()", "serve", "--config", str(path), "--port", str(port), "--workers", "2",
         "--log-level", "warning"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        await _wait_ready(url, proc)
        # A fresh connection per request, so both workers take a share.
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http:
            async def one(i: int) -> int:
                body = {"model": "m", "messages": [{"role": "user", "content": f"hi {i}"}]}
                async with http.post(f"{url}/v1/chat/completions", json=body) as r:
                    await r.read()
                    return r.status

            statuses = await asyncio.gather(*(one(i) for i in range(REQUESTS)))
            assert statuses == [200] * REQUESTS
            # A request is counted just after its last byte is sent (RequestContext.defer), so the
            # other worker may answer a scrape a moment before the last count lands: wait for it.
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                async with http.get(f"{url}/metrics") as r:
                    if _requests_total(await r.text()) >= REQUESTS:
                        break
                await asyncio.sleep(0.02)
            scrapes = []
            for _ in range(6):
                async with http.get(f"{url}/metrics") as r:
                    scrapes.append(_requests_total(await r.text()))
        assert scrapes == [REQUESTS] * 6
        # The multiprocess files exist, one set per worker process that counted something.
        pids = {p.stem.rsplit("_", 1)[-1] for p in mp_dir.glob("counter_*.db")}
        assert len(pids) >= 1, pids
        print("worker processes with counters:", len(pids))
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


async def _wait_ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 40
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(f"the server exited: {proc.stderr.read().decode() if proc.stderr else ''}")
            try:
                async with http.get(f"{url}/health/ready") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise AssertionError("the workers did not become ready")
