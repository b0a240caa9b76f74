"""Fixtures for the scale-out tests: a redis-server that can be killed and restarted on the same
port, a PostgreSQL cluster (initdb, under ``runuser -u postgres`` when root), the simulator and
gateway processes. Each skips cleanly when its binary is absent."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import postgres_server

CLI = [sys.executable, "-c", "from llmrelay.cli import main; main()"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 30.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process for port {port} exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after {timeout}s")


class RedisServer:
    """A redis-server on a fixed port that a test can kill and start again."""

    def __init__(self, binary: str, workdir: Path) -> None:
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, 10, self.proc)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    pytest.importorskip("redis")
    server = RedisServer(binary, tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL cluster for this module's gateway fleet (many connections: 4 gateways' pools)."""
    with postgres_server(max_connections=200) as url:
        yield url


@pytest.fixture(scope="module")
def simulator() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen([*CLI, "simulate", "--port", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_port(port, 30, proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


def start_gateways(config: Path, count: int, logdir: Path) -> tuple[list[subprocess.Popen[bytes]], list[str]]:
    """``count`` ``llmrelay serve`` processes on free ports with the same config."""
    procs, urls = [], []
    for i in range(count):
        port = free_port()
        log = (logdir / f"gateway-{i}.log").open("wb")
        procs.append(subprocess.Popen([*CLI, "serve", "--config", str(config), "--port", str(port),
                                       "--log-level", "warning"], stdout=log, stderr=subprocess.STDOUT))
        urls.append(f"http://127.0.0.1:{port}")
    for p, u in zip(procs, urls, strict=True):
        wait_port(int(u.rsplit(":", 1)[1]), 60, p)
    return procs, urls


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()
