"""A/B the gateway's CPU per request: two source trees, interleaved, on a busy machine.

Wall time on a shared machine says little; the CPU-seconds the gateway process spends per request
(``/proc``, as the harness reads it) do not depend on what else runs. Both gateways run at once
(pinned to the same core, one idle while the other is measured) and the measured batches alternate
A, B, A, B, ... so a change in the machine's load hits both alike. Example, HEAD against the tree:

    mkdir -p /tmp/base && git archive HEAD src | tar -x -C /tmp/base
    python benchmarks/ab.py --a /tmp/base/src --b src --config passthrough --stream both --rounds 5
    python benchmarks/ab.py --a src --b src --server-a uvicorn --server-b granian   # two HTTP servers

Prints, per (config, mode, clients), the median CPU-ms per request and median p50 of each side.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.harness import configs, procs, runner


def _measure(pid: int, url: str, headers: dict[str, str], stream: bool, c: int, n: int,
             plan: runner.Plan, same: bool = False) -> tuple[float, float, float]:
    """(CPU-ms per request, p50 ms, time-to-first-chunk p50 ms) of one measured batch (``same``: one repeated body, the cache-hit path)."""
    row = runner._measured(pid, "ab", url, runner.bodies(stream, same=same, extra={"temperature": 0} if same else None), headers, c, n, stream, plan)
    s = row.sample
    cpu = (row.cpu_s or 0.0) / max(1, s.requests) * 1000
    return cpu, (s.p(0.5) or 0.0) * 1000, (s.p(0.5, first=True) or 0.0) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--a", required=True, help="the baseline's src directory")
    parser.add_argument("--b", required=True, help="the candidate's src directory")
    parser.add_argument("--config", default="passthrough", choices=configs.CONFIGS)
    parser.add_argument("--stream", default="both", choices=("plain", "stream", "both"))
    parser.add_argument("--clients", default="1,16")
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--same", action="store_true", help="one repeated body (cache hits with --config all)")
    parser.add_argument("--server-a", default=None, help="side A's HTTP server (serve --server), e.g. uvicorn")
    parser.add_argument("--server-b", default=None, help="side B's HTTP server (serve --server), e.g. granian")
    args = parser.parse_args()
    runner._pin_self()
    modes = {"plain": (False,), "stream": (True,), "both": (False, True)}[args.stream]
    plan = runner.Plan(warmup=100, max_seconds=20.0)
    sides = {"A": str(Path(args.a).resolve()), "B": str(Path(args.b).resolve())}
    servers = {"A": args.server_a, "B": args.server_b}
    with tempfile.TemporaryDirectory(prefix="llmrelay-ab-") as tmp, contextlib.ExitStack() as stack:
        up_port = procs.free_port()
        stack.enter_context(procs.started([sys.executable, str(runner.HERE / "upstream.py"), "--port",
                                           str(up_port)], up_port, runner.CLIENT_CORE))
        gateways = {}
        for side, src in sides.items():
            env = {"PYTHONPATH": src}
            work = Path(tmp) / side
            with _env(env):
                cfg = configs.prepare(args.config, up_port, work)
            port = procs.free_port()
            proc = stack.enter_context(procs.started(configs.gateway_argv(cfg, port, servers[side]), port, runner.GATEWAY_CORE,
                                                     env=env, log=work / "gateway.log", timeout_s=60))
            headers = {"authorization": f"Bearer {cfg.api_key}"}
            gateways[side] = (proc.pid, f"http://127.0.0.1:{port}/v1/chat/completions", headers)
        results: dict[tuple[str, bool, int], list[tuple[float, float, float]]] = {}
        for r in range(args.rounds):
            for stream in modes:
                for c in (int(x) for x in args.clients.split(",")):
                    for side in (("A", "B") if r % 2 == 0 else ("B", "A")):
                        pid, url, headers = gateways[side]
                        results.setdefault((side, stream, c), []).append(
                            _measure(pid, url, headers, stream, c, args.requests, plan, args.same))
        _print(results, modes, args)


@contextlib.contextmanager
def _env(extra: dict[str, str]):  # type: ignore[no-untyped-def]
    old = {k: os.environ.get(k) for k in extra}
    os.environ.update(extra)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _print(results: dict[tuple[str, bool, int], list[tuple[float, float, float]]], modes: tuple[bool, ...],
           args: argparse.Namespace) -> None:
    same = ", one repeated body" if args.same else ""
    print(f"config {args.config}{same}, {args.rounds} rounds of {args.requests} requests (medians)")
    print("| mode | clients | A CPU-ms/req | B CPU-ms/req | change | A p50 ms | B p50 ms | A TTFC ms | B TTFC ms |")
    print("|---|---|---|---|---|---|---|---|---|")
    for stream in modes:
        for c in (int(x) for x in args.clients.split(",")):
            a, b = results[("A", stream, c)], results[("B", stream, c)]
            ca, cb = statistics.median(x[0] for x in a), statistics.median(x[0] for x in b)
            pa, pb = statistics.median(x[1] for x in a), statistics.median(x[1] for x in b)
            fa, fb = statistics.median(x[2] for x in a), statistics.median(x[2] for x in b)
            ttfc = f"{fa:.3f} | {fb:.3f}" if stream else "- | -"
            print(f"| {'stream' if stream else 'plain'} | {c} | {ca:.3f} | {cb:.3f} | {(cb - ca) / ca * 100:+.1f}% "
                  f"| {pa:.3f} | {pb:.3f} | {ttfc} |")


if __name__ == "__main__":
    main()
