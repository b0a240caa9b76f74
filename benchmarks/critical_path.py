"""The gateway's CPU per request in one process: the ASGI app called directly, the bench upstream
(``harness/upstream.py``) as a real process on loopback, distinct prompts.

    python benchmarks/critical_path.py --config default --mode plain --batches 8 --batch 400
    python benchmarks/critical_path.py --config default --mode stream --profile /tmp/cp.prof

Prints one JSON line: per batch the median thread-CPU microseconds from the app call to the last
body byte ("crit") and to the app's return ("total"), and their medians over the batches. Thread
CPU (``time.thread_time``) leaves other processes' load out, which is what a shared machine needs.
For an A/B, run it alternately with ``PYTHONPATH=A/src`` and ``PYTHONPATH=B/src`` (pinned to the
same core with ``taskset``); ``--profile`` writes a cProfile of the measured batches instead.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
# benchmarks/profile.py would shadow the standard 'profile' that cProfile imports.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
import cProfile  # noqa: E402

sys.path.append(str(HERE))

from harness.configs import MODEL, prepare  # noqa: E402
from harness.inproc import chat_scope, receive_once  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _upstream(port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, str(HERE / "harness" / "upstream.py"), "--port", str(port)],
                            stdout=subprocess.PIPE)
    assert proc.stdout is not None
    proc.stdout.readline()  # "listening"
    return proc


async def _one(app: Any, key: str, i: int, stream: bool) -> tuple[float, float]:
    body = json.dumps({"model": MODEL, "stream": stream, "messages": [
        {"role": "user", "content": f"Tell me something about topic number {i} please"}]}).encode()
    scope = chat_scope(key, len(body))
    crit = [0.0]
    receive = receive_once(body)

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            if message["status"] != 200:
                raise RuntimeError(f"status {message['status']}")
        elif not message.get("more_body", False):
            crit[0] = time.thread_time()

    t0 = time.thread_time()
    await app(scope, receive, send)
    t1 = time.thread_time()
    return (crit[0] - t0) * 1e6, (t1 - t0) * 1e6


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from llmrelay.relay import Relay
    from llmrelay.server.app import create_app

    port = _free_port()
    up = _upstream(port)
    try:
        cfg = prepare(args.config, port, Path(tempfile.mkdtemp(prefix="cp-")))
        relay = Relay.from_file(cfg.path)
        await relay.start()
        app = create_app(relay)
        stream = args.mode == "stream"
        i = 0
        for _ in range(args.warmup):
            i += 1
            await _one(app, cfg.api_key, i, stream)
        prof = None
        if args.profile:
            prof = cProfile.Profile()
            prof.enable()
        batches = []
        for _ in range(args.batches):
            crits, totals = [], []
            for _ in range(args.batch):
                i += 1
                c, t = await _one(app, cfg.api_key, i, stream)
                crits.append(c)
                totals.append(t)
            batches.append((statistics.median(crits), statistics.median(totals)))
            await asyncio.sleep(0.05)  # the deferred work (ledger batch) runs between batches
        if prof is not None:
            prof.disable()
            prof.dump_stats(args.profile)
        await relay.aclose()
    finally:
        up.terminate()
        up.wait()
    return {"config": args.config, "mode": args.mode, "batches": [[round(c, 1), round(t, 1)] for c, t in batches],
            "crit": round(statistics.median(c for c, _ in batches), 1),
            "total": round(statistics.median(t for _, t in batches), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="default", choices=("passthrough", "default", "all"))
    parser.add_argument("--mode", default="plain", choices=("plain", "stream"))
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--batches", type=int, default=6)
    parser.add_argument("--batch", type=int, default=400)
    parser.add_argument("--profile", default="")
    args = parser.parse_args()
    import uvloop

    print(json.dumps(uvloop.run(run(args))), flush=True)


if __name__ == "__main__":
    main()
