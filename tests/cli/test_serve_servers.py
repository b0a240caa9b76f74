"""``llmrelay serve`` in each HTTP server it supports (uvicorn, granian), started for real as a
subprocess on 127.0.0.1 and called with the official OpenAI SDK: a plain call, a stream, a client
that goes away mid-stream (the gateway accounts the call as cancelled and keeps serving), and a
graceful shutdown (SIGTERM: the lifespan shutdown drains the ledger before the process exits)."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import openai
import pytest
import yaml
from tests.conftest import free_port

from llmrelay.cli._http_servers import granian_installed, pick_server

SERVERS = ["uvicorn", pytest.param("granian", marks=pytest.mark.skipif(not granian_installed(),
                                                                         reason="granian is not installed"))]
LONG_REPLY = " ".join(f"word{i}" for i in range(200))


@dataclass
class Served:
    proc: subprocess.Popen[bytes]
    url: str
    db: Path
    log: Path


def _wait_listening(port: int, proc: subprocess.Popen[bytes], log: Path, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"serve exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"serve did not listen on {port} within {timeout_s} s: {log.read_text()[-2000:]}")


@contextmanager
def _serving(tmp_path: Path, server: str, *extra: str) -> Iterator[Served]:
    db = tmp_path / "ledger.db"
    cfg = {
        "providers": {"fake": {"kind": "fake", "options": {"chunk_size": 4}},
                      "slow": {"kind": "fake", "options": {"chunk_size": 6, "latency_s": 0.02,
                                                           "replies": [LONG_REPLY]}}},
        "models": {"m": [{"provider": "fake", "model": "echo"}], "slow": [{"provider": "slow", "model": "echo"}]},
        # Rows are written in batches: a short flush so the cancelled row shows up while serving.
        "storage": {"url": f"sqlite:///{db}", "ledger_flush_s": 0.05},
        "logging": {"level": "warning"},
    }
    path = tmp_path / "llmrelay.yaml"
    path.write_text(yaml.safe_dump(cfg))
    port, log = free_port(), tmp_path / "serve.log"
    argv = [sys.executable, "-c", "from llmrelay.cli import main; main()", "serve", "--config", str(path),
            "--port", str(port), "--server", server, "--log-level", "warning", *extra]
    with open(log, "wb") as out:
        # A session of its own, so the whole group goes at the end: granian's worker processes
        # outlive a killed parent (they were left running after every test before).
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path, start_new_session=True)
        try:
            _wait_listening(port, proc, log)
            yield Served(proc, f"http://127.0.0.1:{port}/v1", db, log)
        finally:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


@pytest.fixture(params=SERVERS)
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Served]:
    with _serving(tmp_path, request.param) as s:
        yield s


def _client(served: Served) -> openai.OpenAI:
    # Generous: the 2 MB body took over 10 s through a busy machine (two CI stress runs timed out).
    return openai.OpenAI(base_url=served.url, api_key="sk-anything", timeout=60, max_retries=0)


def _statuses(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [row[0] for row in conn.execute("SELECT status FROM usage_ledger ORDER BY ts")]


def _eventually(predicate, timeout_s: float = 30.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return bool(predicate())


def test_plain_stream_disconnect_and_graceful_shutdown(served: Served) -> None:
    client = _client(served)
    plain = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hello there"}])
    assert plain.choices[0].message.content == "You said: hello there"
    assert plain.usage is not None and plain.usage.completion_tokens > 0

    stream = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "stream me"}],
                                            stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "You said: stream me"
    assert chunks[-1].usage is not None

    # Read two chunks of a long, slow answer (~1.3 s in all), then hang up.
    with client.chat.completions.create(model="slow", messages=[{"role": "user", "content": "long"}],
                                        stream=True) as slow:
        for _, chunk in zip(range(2), slow, strict=False):
            assert chunk.choices
    assert _eventually(lambda: "cancelled" in _statuses(served.db)), _statuses(served.db)
    # Still serving after the disconnect.
    again = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "still there?"}])
    assert again.choices[0].message.content == "You said: still there?"

    served.proc.send_signal(signal.SIGTERM)
    # uvicorn re-raises the signal once it has shut down gracefully (so -SIGTERM), granian exits 0.
    assert served.proc.wait(35) in (0, -signal.SIGTERM), served.log.read_text()[-2000:]
    statuses = _statuses(served.db)
    # The last call's row was flushed by the lifespan shutdown, after the process stopped serving.
    assert statuses.count("ok") == 3 and statuses.count("cancelled") == 1, statuses


def test_a_large_body_round_trips(served: Served) -> None:
    big = "x" * 2_000_000  # 2 MB, several reads of the request body
    out = _client(served).chat.completions.create(model="m", messages=[{"role": "user", "content": big}])
    assert out.choices[0].message.content == f"You said: {big}"


@pytest.mark.parametrize("server", SERVERS)
def test_two_worker_processes_serve_and_stop(server: str, tmp_path: Path) -> None:
    with _serving(tmp_path, server, "--workers", "2") as served:
        client = _client(served)
        for i in range(6):
            out = client.chat.completions.create(model="m", messages=[{"role": "user", "content": f"n{i}"}])
            assert out.choices[0].message.content == f"You said: n{i}"
        served.proc.send_signal(signal.SIGTERM)
        assert served.proc.wait(35) in (0, -signal.SIGTERM), served.log.read_text()[-2000:]
    assert _statuses(served.db).count("ok") == 6  # each worker drained its ledger on the way out


def test_auto_picks_the_measured_faster_server() -> None:
    assert pick_server("auto") == "uvicorn"
    assert pick_server("uvicorn") == "uvicorn"
