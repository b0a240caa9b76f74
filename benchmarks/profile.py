"""Profile the gateway's hot path with py-spy while the load generator drives it.

    python benchmarks/profile.py --config default --stream --seconds 10

Starts the fake upstream and the gateway (pinned as in overhead.py), samples the gateway with
``py-spy record --format raw`` during a bounded load, and prints where the CPU went: by package,
by function (self) and by function (cumulative). Idle waits (the ledger thread pool's queue) are
left out. Needs ``pip install py-spy`` (and permission to ptrace the child, as root here).
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.harness import configs, procs, runner
from benchmarks.harness.load import run_load

IDLE = ("concurrent/futures/thread.py:81", "threading.py:327", "selectors.py")


def summarize(raw: Path, top: int = 25) -> str:
    own: collections.Counter[str] = collections.Counter()
    cum: collections.Counter[str] = collections.Counter()
    pkg: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or any(i in stack for i in IDLE):
            continue
        n, frames = int(count), stack.split(";")
        total += n
        own[frames[-1]] += n
        for f in set(frames):
            cum[f] += n
        m = re.search(r"\((?:[^()]*/)?(llmrelay/[^:]+|[^/]+)/", frames[-1])
        pkg[m.group(1) if m else "other (C, builtins)"] += n
    def table(c: collections.Counter[str], k: int) -> list[str]:
        return [f"| {n / total * 100:5.1f}% | `{f}` |" for f, n in c.most_common(k)]
    out = [f"{total} busy samples", "", "| share | package or module (self time) |", "|---|---|", *table(pkg, 20),
           "", "| share | function (self time) |", "|---|---|", *table(own, top),
           "", "| share | function (cumulative) |", "|---|---|", *table(cum, top + 15)]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="default", choices=configs.CONFIGS)
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--server", default=None, choices=("auto", "uvicorn", "granian"),
                        help="the gateway's HTTP server (serve --server; default: the gateway's default)")
    parser.add_argument("--same", action="store_true", help="one repeated body (cache hits with --config all)")
    parser.add_argument("--raw", type=Path, default=None, help="keep py-spy's raw output here")
    args = parser.parse_args()
    if shutil.which("py-spy") is None:
        sys.exit("py-spy is not installed: pip install py-spy")
    runner._pin_self()
    with tempfile.TemporaryDirectory(prefix="llmrelay-profile-") as tmp:
        work = Path(tmp)
        raw = args.raw or work / "profile.raw"
        up_port, gw_port = procs.free_port(), procs.free_port()
        up = [sys.executable, str(runner.HERE / "upstream.py"), "--port", str(up_port)]
        with procs.started(up, up_port, runner.CLIENT_CORE):
            cfg = configs.prepare(args.config, up_port, work)
            with procs.started(configs.gateway_argv(cfg, gw_port, args.server), gw_port, runner.GATEWAY_CORE) as gw:
                url = f"http://127.0.0.1:{gw_port}/v1/chat/completions"
                headers = {"content-type": "application/json", "authorization": f"Bearer {cfg.api_key}"}
                bodies = runner.bodies(args.stream, same=args.same, extra={"temperature": 0} if args.same else None)
                runner._run(run_load(url, bodies, headers, args.clients, 300, args.stream, 10))  # warm up
                # --subprocesses: granian serves from worker processes under its supervisor.
                spy = subprocess.Popen(["py-spy", "record", "--subprocesses", "-p", str(gw.pid),
                                        "-d", str(int(args.seconds)),
                                        "-r", "250", "-f", "raw", "-o", str(raw)],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                sample = runner._run(run_load(url, bodies, headers, args.clients, 10_000_000, args.stream,
                                              args.seconds))
                spy.wait(30)
        print(f"# {args.config}, {'streamed' if args.stream else 'non-streamed'}, {args.clients} clients: "
              f"{sample.requests} requests in {sample.seconds:.1f} s\n")
        print(summarize(raw))


if __name__ == "__main__":
    main()
