"""Fixtures for the caching tests: a relay over the fake provider with a price for it (so saved cost
is visible), and a real redis-server on 127.0.0.1 (skipped cleanly when the binary is absent)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from llmrelay import Relay
from llmrelay.clock import ManualClock


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def relay_config(tmp: Path, cache: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "providers": {"fake": {"kind": "fake"}},
        "models": {"m": [{"provider": "fake", "model": "echo"}], "other": [{"provider": "fake", "model": "echo"}]},
        # $1000 per million tokens: a word costs a tenth of a cent, so savings are visible.
        "pricing": {"overrides": {"fake/echo": {"input_per_mtok": 1000.0, "output_per_mtok": 1000.0}}},
        "storage": {"url": f"sqlite:///{tmp / 'ledger.db'}"},
        "cache": {"enabled": True, **(cache or {})},
        **extra,
    }


def make_relay(tmp: Path, clock: ManualClock | None = None, cache: dict[str, Any] | None = None,
               **extra: Any) -> Relay:
    return Relay(relay_config(tmp, cache, **extra), clock=clock)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    pytest.importorskip("redis")
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.skip("redis-server did not start")
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
