"""The public contracts of DESIGN.md, exercised from outside as an external test suite would:
the CLI through subprocesses, HTTP against a real ``llmrelay serve`` in front of ``llmrelay simulate``.

One simulator and one gateway (with a master key, moderate safety) serve the whole session; each
test makes its own virtual keys so tests do not share budgets or rate limits.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

MASTER_KEY = "mk-contract-0123456789"
SECRET_UPSTREAM_KEY = "sk-upstream-never-logged-4242"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def llmrelay_cmd() -> list[str]:
    exe = shutil.which("llmrelay")
    return [exe] if exe else [sys.executable, "-m", "llmrelay.cli"]


def run_cli(*args: str, config: Path | None = None, stdin: str | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
    cfg = ["--config", str(config)] if config is not None else []
    env = {**os.environ, "LLMRELAY_CONFIG": ""}
    return subprocess.run([*llmrelay_cmd(), *args, *cfg], input=stdin, capture_output=True, text=True,
                          timeout=timeout, env=env)


def wait_http(url: str, proc: subprocess.Popen[Any], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer in {timeout_s} s")


def stop(proc: subprocess.Popen[Any]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


@dataclass(frozen=True)
class Gateway:
    url: str
    config: Path
    db: Path
    log: Path

    def key(self, **opts: Any) -> str:
        """A fresh virtual key made with ``keys create --json`` (options as CLI flags)."""
        flags = [f"--{k.replace('_', '-')}={v}" for k, v in opts.items()]
        out = run_cli("keys", "create", "--name", f"t{time.monotonic_ns()}", *flags, "--json", config=self.config)
        assert out.returncode == 0, out.stderr
        return str(json.loads(out.stdout)["key"])


@pytest.fixture(scope="session")
def simulator() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen([*llmrelay_cmd(), "simulate", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/_sim/stats", proc)
        yield url
    finally:
        stop(proc)


def gateway_config(tmp: Path, sim: str, port: int) -> dict[str, Any]:
    return {
        "server": {"host": "127.0.0.1", "port": port, "master_key": MASTER_KEY},
        "storage": {"url": f"sqlite:///{tmp / 'relay.db'}"},
        "providers": {
            "sim": {"kind": "openai", "base_url": f"{sim}/openai/v1", "api_key": SECRET_UPSTREAM_KEY},
            "simanth": {"kind": "anthropic", "base_url": f"{sim}/anthropic", "api_key": SECRET_UPSTREAM_KEY},
        },
        "models": {
            "fast": [{"provider": "sim", "model": "gpt-4o-mini"}],
            "claude": [{"provider": "simanth", "model": "claude-sonnet-4-5"}],
            "slow": [{"provider": "sim", "model": "gpt-4o-mini+words=400,chunks=100,chunk_delay=20"}],
        },
        "pricing": {"overrides": {"sim/gpt-4o-mini": {"input_per_mtok": 0.15, "output_per_mtok": 0.60}}},
        "safety": {"level": "moderate", "audit": True},
        "logging": {"access_log": True},
    }


@pytest.fixture(scope="session")
def gateway(simulator: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("gateway")
    port = free_port()
    config = tmp / "llmrelay.yaml"
    config.write_text(yaml.safe_dump(gateway_config(tmp, simulator, port)))
    log = tmp / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([*llmrelay_cmd(), "serve", "--config", str(config)], stdout=out, stderr=out,
                                env={**os.environ, "LLMRELAY_CONFIG": "", "LLMRELAY_MASTER_KEY": ""})
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/health/ready", proc)
        yield Gateway(url, config, tmp / "relay.db", log)
    finally:
        stop(proc)
