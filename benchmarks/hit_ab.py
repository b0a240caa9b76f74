"""A/B the CPU of a cache hit (or a joined duplicate) in process: no HTTP server, no load generator.

Each side is a worker process that builds the gateway's ASGI app from a source tree (the bench
upstream is a real process on loopback) and, on each "go", sends one batch of identical requests
straight into the app and prints the process CPU per request, the audit and ledger writers'
flushes included (``time.process_time``: every thread). Both workers are pinned to one core and the
batches alternate A, B, B, A, ..., so a change in the machine's load hits both alike; what HTTP
adds (uvicorn, the client) is left out, so the relative change is larger than ``ab.py``'s.

    python benchmarks/hit_ab.py --a /tmp/base/src --b src --rounds 12                # cache hits
    python benchmarks/hit_ab.py --a /tmp/base/src --b src --config default --concurrency 64 --slow
                                                                                     # dedup joins
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
BODY = "Tell me something about topic number 7 please"
SLOW = "bench-slow: one question everyone asks"  # the bench upstream answers it after --slow-ms


async def _one(app: Any, key: str, body: bytes) -> None:
    from harness.inproc import chat_scope, receive_once


    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start" and message["status"] != 200:
            raise RuntimeError(f"status {message['status']}")

    await app(chat_scope(key, len(body)), receive_once(body), send)


def _worker(args: argparse.Namespace) -> None:
    sys.path.append(str(HERE))
    from harness.procs import free_port

    port = free_port()
    up = subprocess.Popen([sys.executable, str(HERE / "harness" / "upstream.py"), "--port", str(port)],
                          stdout=subprocess.PIPE)
    assert up.stdout is not None
    up.stdout.readline()  # "listening"
    try:
        import uvloop

        uvloop.run(_serve_batches(args, port))
    finally:
        up.terminate()
        up.wait()


async def _serve_batches(args: argparse.Namespace, port: int) -> None:
    from harness.configs import MODEL, prepare

    from llmrelay.relay import Relay
    from llmrelay.server.app import create_app

    cfg = prepare(args.config, port, Path(tempfile.mkdtemp(prefix="hit-ab-")))
    relay = Relay.from_file(cfg.path)
    await relay.start()
    app = create_app(relay)
    body = json.dumps({"model": MODEL, "stream": args.stream, "temperature": 0, "messages": [
        {"role": "user", "content": SLOW if args.slow else BODY}]}).encode()
    services = relay.services

    async def batch() -> None:
        for _ in range(max(1, args.batch // args.concurrency)):
            await asyncio.gather(*(_one(app, cfg.api_key, body) for _ in range(args.concurrency)))
        ledger = getattr(services, "ledger", None)
        if ledger is not None:
            await ledger.flush()
        if services.audit is not None:
            await services.audit.flush()

    for _ in range(3):
        await batch()  # warm up (the first request of a hit run is the miss that fills the cache)
    loop = asyncio.get_running_loop()
    print("ready", flush=True)
    while (await loop.run_in_executor(None, sys.stdin.readline)).strip() == "go":
        t0 = time.process_time()
        await batch()
        print((time.process_time() - t0) / args.batch * 1e6, flush=True)
    await relay.aclose()


def _orchestrate(args: argparse.Namespace) -> None:
    argv = [sys.executable, __file__, "--worker", "--config", args.config, "--batch", str(args.batch),
            "--concurrency", str(args.concurrency), *(["--slow"] if args.slow else []),
            *(["--stream"] if args.stream else [])]
    workers = {side: subprocess.Popen(["taskset", "-c", args.core, *argv], env={**os.environ, "PYTHONPATH": src},
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
               for side, src in (("A", str(Path(args.a).resolve())), ("B", str(Path(args.b).resolve())))}
    for w in workers.values():
        assert w.stdout is not None and w.stdout.readline().strip() == "ready"
    cpu: dict[str, list[float]] = {"A": [], "B": []}
    for r in range(args.rounds):
        for side in ("A", "B") if r % 2 == 0 else ("B", "A"):
            w = workers[side]
            assert w.stdin is not None and w.stdout is not None
            w.stdin.write("go\n")
            w.stdin.flush()
            cpu[side].append(float(w.stdout.readline()))
    for w in workers.values():
        assert w.stdin is not None
        w.stdin.write("stop\n")
        w.stdin.flush()
        w.wait()
    a, b = statistics.median(cpu["A"]), statistics.median(cpu["B"])
    paired = sorted(y / x for x, y in zip(cpu["A"], cpu["B"], strict=True))
    what = "dedup join" if args.slow else "cache hit"
    print(f"{what} ({args.config}, {'stream' if args.stream else 'plain'}, {args.concurrency} at once, "
          f"{args.rounds} rounds of {args.batch}): A {a:.1f} us, B {b:.1f} us per request ({(b - a) / a * 100:+.1f}%); "
          f"paired B/A median {statistics.median(paired):.3f} (range {paired[0]:.3f}-{paired[-1]:.3f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--a", help="the baseline's src directory")
    parser.add_argument("--b", help="the candidate's src directory")
    parser.add_argument("--config", default="all", choices=("default", "all"))
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--batch", type=int, default=640)
    parser.add_argument("--concurrency", type=int, default=1, help="requests in flight at once (64 for dedup)")
    parser.add_argument("--slow", action="store_true", help="a body the upstream answers slowly (dedup joins)")
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--core", default="1", help="the core both workers are pinned to")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(args)
    elif args.a and args.b:
        _orchestrate(args)
    else:
        parser.error("give --a and --b")


if __name__ == "__main__":
    main()
