"""``llmrelay serve``: run the gateway in uvicorn (uvloop + llmrelay's HTTP/1.1 protocol, or uvicorn's
httptools one: server.http_protocol) or granian (Rust HTTP, ASGI).

    llmrelay serve --config llmrelay.yaml --host 0.0.0.0 --port 4000 --workers 4
    llmrelay serve --server granian  # server.http_server (auto = uvicorn, measured faster)
    llmrelay serve --demo        # the gateway plus the simulator, no keys needed
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from ._common import config_file, config_option, fail, load
from ._http_servers import SERVERS, pick_server, run_granian


def _uvicorn_options(settings: Any, log_level: str) -> dict[str, Any]:
    # uvloop and the HTTP/1.1 protocol (server.http_protocol: llmrelay's own or uvicorn's httptools).
    from ..server.h1_protocol import server_options

    return {**server_options(settings.server.http_protocol), "log_level": log_level,
            "access_log": bool(settings.logging.access_log), "timeout_graceful_shutdown": 30,
            "timeout_keep_alive": 30, "backlog": 4096}


def raise_open_files_limit() -> int:
    """Lift the soft limit on open files to the hard limit and return it. Every client and every
    upstream connection is a descriptor: the usual soft limit (1,024) would make ``accept`` fail
    well before a thousand concurrent streams, which the hard limit (often 65,536+) allows."""
    try:
        import resource
    except ImportError:  # not on Windows
        return 0
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


@click.command(name="serve")
@config_option
@click.option("--host", default=None, help="Address to listen on (default: server.host, 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default: server.port, 4000).")
@click.option("--workers", type=click.IntRange(1), default=None, help="Worker processes (default: server.workers).")
@click.option("--demo", is_flag=True, help="Run with the built-in simulated providers; no keys needed.")
@click.option("--log-level", default="info", type=click.Choice(["debug", "info", "warning", "error"]))
@click.option("--server", "http_server", default=None, type=click.Choice(["auto", *SERVERS]),
              help="HTTP server (default: server.http_server; auto = uvicorn, measured faster).")
def command(config_path: Path | None, host: str | None, port: int | None, workers: int | None,
            demo: bool, log_level: str, http_server: str | None) -> None:
    """Run the gateway: OpenAI and Anthropic compatible endpoints, admin API, metrics."""
    import uvicorn

    from ..relay import Relay
    from ..server.app import check_bind, create_app, with_env_master_key
    from ..server.gc_tuning import tune_gc

    if demo:
        _run_demo(host or "127.0.0.1", 4000 if port is None else port, log_level)
        return
    settings = with_env_master_key(load(config_path))
    from ..ops.logging import configure_logging

    # One JSON line per record, secrets redacted (llmrelay.ops.logging); workers redo this.
    configure_logging(settings.logging)
    host = host or settings.server.host
    port = settings.server.port if port is None else port
    workers = workers or settings.server.workers
    problem = check_bind(host, settings.server.master_key)
    if problem:
        fail(problem)
    raise_open_files_limit()
    if pick_server(http_server or settings.server.http_server) == "granian":
        _export_config(config_path, workers)
        run_granian(host, port, workers, log_level, access_log=bool(settings.logging.access_log))
        return
    options = _uvicorn_options(settings, log_level)
    if workers == 1:
        app = create_app(Relay(settings))
        tune_gc(settings.server)  # once the app is built: its heap is the start-up heap
        uvicorn.run(app, host=host, port=port, **options)
        return
    _export_config(config_path, workers)
    uvicorn.run("llmrelay.server.app:create_app_from_env", factory=True, host=host, port=port,
                workers=workers, **options)


def _export_config(config_path: Path | None, workers: int) -> None:
    """Worker processes build their own app (``create_app_from_env``) from the config file, or
    from the environment; several workers share their metrics through a multiprocess directory."""
    path = config_file(config_path)
    if path is not None:
        os.environ["LLMRELAY_CONFIG"] = str(path.resolve())
    if workers > 1:
        os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="llmrelay-metrics-"))


@contextlib.contextmanager
def _simulator() -> Iterator[str | None]:
    from ..server.demo import simulator_available

    if not simulator_available():
        yield None
        return
    from ..simulator import serve_in_thread

    with serve_in_thread() as url:
        yield url


def _run_demo(host: str, port: int, log_level: str) -> None:
    import uvicorn

    from ..config import Settings
    from ..relay import Relay
    from ..server.app import check_bind, create_app
    from ..server.demo import banner, demo_settings

    problem = check_bind(host, None)
    if problem:
        fail(problem)
    with _simulator() as sim_url:
        settings = Settings.from_dict(demo_settings(sim_url), source="demo")
        click.echo(banner(f"http://{host}:{port}", list(settings.models)))
        app = create_app(Relay(settings))
        from ..server.gc_tuning import tune_gc

        tune_gc(settings.server)
        uvicorn.run(app, host=host, port=port, **_uvicorn_options(settings, log_level))
