"""Shared fixtures. Wire recordings live in ../shared/data/wire beside the checkout.

Real servers for the store tests live here, once for the whole suite: ``redis_url`` (one
redis-server for the session) and ``postgres_url`` (one PostgreSQL cluster for the session, a fresh
database for each test). Each skips cleanly when its binary or driver is missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(autouse=True)
def _restore_llmrelay_logging() -> Iterator[None]:
    """Tests that start a server call configure_logging, which gives the ``llmrelay`` logger its own
    handler and stops propagation; put it back so later tests' log capture sees records."""
    logger = logging.getLogger("llmrelay")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    root_filters = {id(h): list(h.filters) for h in logging.getLogger().handlers}
    yield
    logger.handlers[:], logger.level, logger.propagate = saved[0], saved[1], saved[2]
    for h in logging.getLogger().handlers:
        if id(h) in root_filters:
            h.filters[:] = root_filters[id(h)]

# Property tests must not fail because the machine is busy: no per-example deadline (200 ms by
# default; one GC pause of a big test process can exceed it), no "too slow" health check, and the
# same examples on every run (CI must not flake on a new random draw; hypothesis still shrinks).
try:
    from hypothesis import HealthCheck
    from hypothesis import settings as _hypothesis_settings
except ImportError:  # the minimal install runs without hypothesis
    pass
else:
    _hypothesis_settings.register_profile("llmrelay", deadline=None, derandomize=True,
                                          suppress_health_check=[HealthCheck.too_slow])
    _hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "llmrelay"))

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("LLMRELAY_SHARED", REPO.parent / "shared"))
WIRE = SHARED / "data" / "wire"
SAFETY_DATA = SHARED / "data" / "safety"


@pytest.fixture
def wire_dir() -> Path:
    if not WIRE.is_dir():
        pytest.skip(f"no recorded exchanges at {WIRE}")
    return WIRE


def eventually(predicate: Callable[[], object], timeout: float = 5.0, interval: float = 0.005,
               message: str = "the condition did not hold in time") -> None:
    """Poll ``predicate`` until it is truthy, failing after ``timeout`` seconds.

    For state the *other side* updates after its last byte (a server's counters, rows written
    after the response, a background task): assert on it through this instead of racing it.
    """
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, message
        time.sleep(interval)


async def eventually_async(predicate: Callable[[], object], timeout: float = 5.0, interval: float = 0.005,
                           message: str = "the condition did not hold in time") -> None:
    """:func:`eventually` for async tests: sleeps with ``asyncio.sleep`` so the loop keeps running."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, message
        await asyncio.sleep(interval)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                pytest.skip(f"{proc.args[0]} did not start on port {port}")
            time.sleep(0.05)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    pytest.importorskip("redis")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(tmp_path_factory.mktemp("redis"))], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # The gateway gives each Redis reply 0.5 s, then serves on local state (fail fast, by design).
    # These tests check what happens with a healthy Redis; a test process whose event loop is
    # saturated (200 concurrent callers, a busy machine) can take longer than that to read a reply
    # that arrived at once, which opened the circuit and made a second upstream call in a stress
    # run. So in-process clients get 5 s here; the degraded paths have their own tests.
    from llmrelay.shared_state import client as shared_client

    original = shared_client.redis_client

    def generous(url: str, timeout_s: float = 5.0) -> Any:
        return original(url, max(timeout_s, 5.0))

    try:
        wait_port(port, proc)
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(shared_client, "redis_client", generous)
            yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _pg_tool(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    return next((str(p) for p in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True)), None)


@contextlib.contextmanager
def uvicorn_serving(app: Any, protocol: str | None = None, start_timeout_s: float = 15.0,
                    **options: Any) -> Iterator[tuple[Any, int]]:
    """Run ``app`` under uvicorn (uvloop; ``protocol`` as ``server.http_protocol``, None = the
    default ``llmrelay serve`` uses) on a free 127.0.0.1 port in a thread of its own; yield the
    server and its port, and shut it down (lifespan included) on exit. ``options`` go to
    ``uvicorn.Config``."""
    import uvicorn

    from llmrelay.server.h1_protocol import server_options

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    config = {**server_options(protocol), "log_level": "warning", "access_log": False, **options}
    server = uvicorn.Server(uvicorn.Config(app, **config))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout_s
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.005)
    try:
        yield server, sock.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(start_timeout_s)
        sock.close()


@contextlib.contextmanager
def serve_asgi(app: Any, start_timeout_s: float = 15.0) -> Iterator[str]:
    """Serve an ASGI app as ``llmrelay serve`` does (:func:`uvicorn_serving`); yield its base URL."""
    with uvicorn_serving(app, start_timeout_s=start_timeout_s) as (_, port):
        yield f"http://127.0.0.1:{port}"


@contextlib.contextmanager
def postgres_server(max_connections: int = 200) -> Iterator[str]:
    """Start a throwaway PostgreSQL cluster on 127.0.0.1 (as root, run as the postgres user) and
    yield the URL of its ``postgres`` database; skips the test when it cannot be started."""
    initdb, pg_ctl = _pg_tool("initdb"), _pg_tool("pg_ctl")
    if initdb is None or pg_ctl is None:
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) are not installed")
    pytest.importorskip("asyncpg")
    as_root = os.geteuid() == 0
    if as_root and shutil.which("runuser") is None:
        pytest.skip("running as root without runuser: cannot start PostgreSQL")
    base = Path(tempfile.mkdtemp(prefix="llmrelay-pg-"))
    os.chmod(base, 0o777)
    data, port = base / "data", free_port()
    prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
    options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections={max_connections}"
    try:
        subprocess.run([*prefix, initdb, "-D", str(data), "-U", "postgres", "-A", "trust"], check=True,
                       capture_output=True, timeout=60)
        subprocess.run([*prefix, pg_ctl, "-D", str(data), "-w", "-l", str(base / "log"), "-o", options, "start"],
                       check=True, capture_output=True, timeout=60)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        shutil.rmtree(base, ignore_errors=True)
        pytest.skip(f"could not start PostgreSQL: {exc}")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*prefix, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True, timeout=60)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[str]:
    """The URL of a throwaway PostgreSQL cluster's ``postgres`` database, shared by the session."""
    with postgres_server() as url:
        yield url


@pytest.fixture
def postgres_url(postgres_cluster: str) -> str:
    """A fresh, empty database on the session's cluster, so tests never see each other's tables."""
    import asyncpg

    name = "t_" + os.urandom(6).hex()

    async def create() -> None:
        conn = await asyncpg.connect(postgres_cluster)
        try:
            await conn.execute(f"CREATE DATABASE {name}")
        finally:
            await conn.close()

    # A thread of its own: the fixture may be requested from inside a running event loop.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, create()).result(timeout=30)
    return postgres_cluster.rsplit("/", 1)[0] + f"/{name}"
