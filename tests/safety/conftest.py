"""Fixtures for the safety tests: an engine, an SQLite audit log, and a throwaway PostgreSQL."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from llmrelay.safety.audit import AuditLog
from llmrelay.safety.audit_store import open_store
from llmrelay.safety.engine import SafetyEngine


@pytest.fixture(scope="session")
def engine() -> SafetyEngine:
    return SafetyEngine()


@pytest.fixture
def secret() -> bytes:
    return b"test-secret-0123456789"


@pytest.fixture
async def sqlite_log(tmp_path: Path, secret: bytes) -> AsyncIterator[AuditLog]:
    log = AuditLog(open_store(f"sqlite:///{tmp_path}/audit.db"), secret, clock=iter(range(1_000, 10_000)).__next__)
    yield log
    await log.store.aclose()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A throwaway cluster on 127.0.0.1 (skips cleanly when PostgreSQL is not installed)."""
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if not initdb or not pg_ctl:
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) are not installed")
    try:
        import asyncpg  # noqa: F401
    except ImportError:
        pytest.skip("asyncpg (the 'postgres' extra) is not installed")
    base = Path(tempfile.mkdtemp(prefix="llmrelay-pg-"))
    data = base / "data"
    runas: list[str] = []
    if os.geteuid() == 0:
        if not shutil.which("runuser"):
            pytest.skip("running as root without runuser")
        runas = ["runuser", "-u", "postgres", "--"]
        shutil.chown(base, "postgres")
    port = _free_port()
    try:
        subprocess.run([*runas, initdb, "-D", str(data), "-U", "postgres", "-A", "trust"], check=True, capture_output=True, timeout=60)
        subprocess.run([*runas, pg_ctl, "-D", str(data), "-l", str(base / "log"), "-w", "-t", "30", "-o",
                        f"-h 127.0.0.1 -p {port} -k {base}", "start"], check=True, capture_output=True, timeout=60)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, KeyError) as exc:
        pytest.skip(f"could not start PostgreSQL: {exc}")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*runas, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True, timeout=60)
        time.sleep(0.1)
        shutil.rmtree(base, ignore_errors=True)
