"""A/B the dedup join: gateway CPU per request while identical requests wait on one upstream call.

The same method as ``ab.py`` (two source trees served at once on the gateway's core, batches
interleaved A, B, B, A, ..., medians), on the overhead benchmark's dedup row: 64 clients send one
``temperature: 0`` body that the benchmark upstream answers after 50 ms, so nearly every request
joins a flight already in progress.

    python benchmarks/ab_dedup.py --a /tmp/base/src --b src --rounds 6
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.ab import _env
from benchmarks.harness import configs, procs, runner

SLOW = {"temperature": 0, "messages": [{"role": "user", "content": "bench-slow: one question everyone asks"}]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--a", required=True, help="the baseline's src directory")
    parser.add_argument("--b", required=True, help="the candidate's src directory")
    parser.add_argument("--config", default="default", choices=configs.CONFIGS)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--requests", type=int, default=1500)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    runner._pin_self()
    plan = runner.Plan(warmup=100, max_seconds=20.0)
    body = runner.bodies(False, same=True, extra=SLOW)
    with tempfile.TemporaryDirectory(prefix="llmrelay-ab-dedup-") as tmp, contextlib.ExitStack() as stack:
        up = procs.free_port()
        stack.enter_context(procs.started([sys.executable, str(runner.HERE / "upstream.py"), "--port", str(up)], up,
                                          runner.CLIENT_CORE))
        gateways = {}
        for side, src in (("A", str(Path(args.a).resolve())), ("B", str(Path(args.b).resolve()))):
            env, work = {"PYTHONPATH": src}, Path(tmp) / side
            with _env(env):
                cfg = configs.prepare(args.config, up, work)
            port = procs.free_port()
            proc = stack.enter_context(procs.started(configs.gateway_argv(cfg, port), port, runner.GATEWAY_CORE,
                                                     env=env, log=work / "gateway.log", timeout_s=60))
            gateways[side] = (proc.pid, f"http://127.0.0.1:{port}/v1/chat/completions",
                              {"authorization": f"Bearer {cfg.api_key}"})
        cpu: dict[str, list[float]] = {"A": [], "B": []}
        for r in range(args.rounds):
            for side in ("A", "B") if r % 2 == 0 else ("B", "A"):
                pid, url, headers = gateways[side]
                row = runner._measured(pid, "ab", url, body, headers, args.clients, args.requests, False, plan)
                cpu[side].append((row.cpu_s or 0.0) / max(1, row.sample.requests) * 1000)
    a, b = statistics.median(cpu["A"]), statistics.median(cpu["B"])
    print(f"dedup join ({args.config}, {args.clients} clients, {args.rounds} rounds of {args.requests}, medians): "
          f"A {a:.3f} B {b:.3f} CPU-ms/req ({(b - a) / a * 100:+.1f}%)")
    print("A rounds: " + ", ".join(f"{x:.3f}" for x in cpu["A"]) + "; B rounds: " + ", ".join(f"{x:.3f}" for x in cpu["B"]))


if __name__ == "__main__":
    main()
