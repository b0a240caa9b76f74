"""Which HTTP server runs the gateway's ASGI app, and how granian is started.

uvicorn (uvloop + httptools) is always installed; granian (a Rust HTTP server with an ASGI
interface) is the ``granian`` extra. ``auto`` is the one measured to spend less gateway CPU per
request: uvicorn (benchmarks/results/PROFILE.md, round five: granian's ASGI bridge between its Rust
runtime thread and the event loop cost more per request at one client, and was within noise at 16).
"""

from __future__ import annotations

import importlib.util

SERVERS = ("uvicorn", "granian")
# granian's worker processes build the app themselves, from $LLMRELAY_CONFIG or the environment.
APP_FACTORY = "llmrelay.server.app:create_app_from_env"


def granian_installed() -> bool:
    return importlib.util.find_spec("granian") is not None


def pick_server(choice: str) -> str:
    """``uvicorn`` or ``granian`` for a configured choice (``auto`` = the measured faster: uvicorn)."""
    if choice == "auto":
        return "uvicorn"
    if choice == "granian" and not granian_installed():
        from ._common import fail

        fail("server.http_server is granian but granian is not installed: pip install 'llmrelay[granian]', "
             "or choose uvicorn (--server uvicorn)")
    return choice


def run_granian(host: str, port: int, workers: int, log_level: str, *, access_log: bool) -> None:
    """Serve until SIGINT/SIGTERM. Granian supervises ``workers`` processes, each with its own
    event loop (uvloop) and app; on shutdown each runs the ASGI lifespan shutdown (the relay drains)
    before the supervisor exits, waiting up to 30 s as uvicorn's graceful shutdown does."""
    from granian import Granian
    from granian.constants import HTTPModes, Interfaces, Loops
    from granian.log import LogLevels

    Granian(
        APP_FACTORY, factory=True, address=host, port=port, interface=Interfaces.ASGI, workers=workers,
        loop=Loops.uvloop, http=HTTPModes.http1, backlog=4096, log_level=LogLevels(log_level),
        log_access=access_log, workers_kill_timeout=30,
    ).serve()
