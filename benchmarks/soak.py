"""Load and soak (issue #11; not run in CI): many concurrent streaming clients for a while, then
a long series of requests through the usage ledger, watching memory and per-request cost.

    python benchmarks/soak.py                            # 1,000 streaming clients for 60 s, 10,000 ledger requests
    python benchmarks/soak.py --clients 1000 --seconds 300

Phase 1 keeps ``--clients`` streaming clients busy for ``--seconds`` against the default config
(virtual key, ledger, moderate safety) and samples the gateway's RSS every few seconds: it should
be flat once warm, with no errors. Phase 2 sends ``--ledger-requests`` non-streamed requests in
batches of 1,000 and reports the gateway CPU per request of each batch: it should not grow as the
ledger fills. Results go to benchmarks/results/soak.json and soak.md. 127.0.0.1 only; bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.harness import configs, procs, runner
from benchmarks.harness.load import run_load


async def _sample_rss(pid: int, every_s: float, out: list[dict[str, float]], stop: asyncio.Event) -> None:
    t0 = time.monotonic()
    while not stop.is_set():
        u = procs.usage(pid)
        out.append({"t_s": round(time.monotonic() - t0, 1), "rss_mb": round(u.rss_mb, 1), "cpu_s": round(u.cpu_s, 2)})
        try:
            await asyncio.wait_for(stop.wait(), every_s)
        except TimeoutError:
            pass


async def soak(url: str, key: str, pid: int, clients: int, seconds: float) -> dict[str, Any]:
    headers = {"content-type": "application/json", "authorization": f"Bearer {key}"}
    samples: list[dict[str, float]] = []
    stop = asyncio.Event()
    sampler = asyncio.create_task(_sample_rss(pid, 5.0, samples, stop))
    # A request count the clients cannot finish in time: the run ends on the seconds bound.
    sample = await run_load(url, runner.bodies(True), headers, clients, 10_000_000, True, seconds)
    stop.set()
    await sampler
    return {"clients": clients, "seconds": round(sample.seconds, 1), "streams": sample.requests,
            "errors": sample.errors, "error_kinds": sample.error_kinds, "streams_per_s": round(sample.rps, 1),
            "p50_ms": runner._ms(sample.p(0.5)), "p99_ms": runner._ms(sample.p(0.99)),
            "ttfc_p50_ms": runner._ms(sample.p(0.5, first=True)), "rss": samples}


async def ledger_series(url: str, key: str, pid: int, total: int) -> list[dict[str, Any]]:
    headers = {"content-type": "application/json", "authorization": f"Bearer {key}"}
    out = []
    for batch in range(total // 1000):
        before = procs.usage(pid)
        sample = await run_load(url, runner.bodies(False), headers, 16, 1000, False, 60)
        after = procs.usage(pid)
        out.append({"batch": batch + 1, "requests": sample.requests, "errors": sample.errors,
                    "cpu_s_per_1k": round(procs.cpu_between(before, after) / max(1, sample.requests) * 1000, 3),
                    "p50_ms": runner._ms(sample.p(0.5)), "rss_mb": round(after.rss_mb, 1)})
    return out


def markdown(data: dict[str, Any]) -> str:
    s = data["soak"]
    rss = [r["rss_mb"] for r in s["rss"]]
    lines = [f"## Soak: {s['clients']} concurrent streaming clients for {s['seconds']} s (config `default`)", "",
             f"- streams completed: {s['streams']} ({s['streams_per_s']}/s), errors: {s['errors']}"
             + (f" ({', '.join(f'{k}: {v}' for k, v in s.get('error_kinds', {}).items())})" if s['errors'] else ""),
             f"- latency p50 {s['p50_ms']} ms, p99 {s['p99_ms']} ms; time to first chunk p50 {s['ttfc_p50_ms']} ms",
             f"- gateway RSS (MB) every 5 s: {', '.join(str(r) for r in rss)}", "",
             "## Ledger series: batches of 1,000 requests (16 clients)", "",
             "| batch | requests | errors | CPU s / 1k | p50 ms | RSS MB |", "|---|---|---|---|---|---|"]
    lines += [f"| {b['batch']} | {b['requests']} | {b['errors']} | {b['cpu_s_per_1k']} | {b['p50_ms']} | {b['rss_mb']} |"
              for b in data["ledger"]]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--ledger-requests", type=int, default=10_000)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    parser.add_argument("--workdir", type=Path, default=None, help="keep configs and gateway.log here")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4 * args.clients + 256)), hard))
    runner._pin_self()
    with tempfile.TemporaryDirectory(prefix="llmrelay-soak-") as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        up_port, gw_port = procs.free_port(), procs.free_port()
        up = [sys.executable, str(runner.HERE / "upstream.py"), "--port", str(up_port)]
        with procs.started(up, up_port, runner.CLIENT_CORE):
            cfg = configs.prepare("default", up_port, work)
            with procs.started(configs.gateway_argv(cfg, gw_port), gw_port, runner.GATEWAY_CORE,
                               log=work / "gateway.log") as gw:
                url = f"http://127.0.0.1:{gw_port}/v1/chat/completions"
                data = {"soak": runner._run(soak(url, cfg.api_key, gw.pid, args.clients, args.seconds)),
                        "ledger": runner._run(ledger_series(url, cfg.api_key, gw.pid, args.ledger_requests))}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "soak.json").write_text(json.dumps(data, indent=2) + "\n")
    (args.out / "soak.md").write_text(markdown(data) + "\n")
    print(markdown(data))


if __name__ == "__main__":
    main()
