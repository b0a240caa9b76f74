"""One benchmark run: the fake upstream, the direct calls, then each gateway configuration.

The load generator (this process) and the upstream share core 0; the gateway has core 1 to itself.
Each phase is a warm-up then a measured batch of requests, bounded by a count and by seconds; the
gateway's CPU time and memory are read from /proc before and after the measured batch.
"""

from __future__ import annotations

import asyncio
import functools
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from . import configs, procs
from .load import Sample, run_load

HERE = Path(__file__).resolve().parent
GATEWAY_CORE, CLIENT_CORE = 1, 0


@dataclass(frozen=True, slots=True)
class Plan:
    """How much to run: concurrencies, requests per measured phase, warm-up, seconds cap."""

    configs: tuple[str, ...] = configs.CONFIGS
    concurrency: tuple[int, ...] = (1, 16, 64)
    requests: int = 2000
    requests_c1: int = 1000
    warmup: int = 200
    max_seconds: float = 20.0
    litellm: str | None = None  # path of the litellm executable, if it should be measured
    litellm_requests: int = 400
    extras: bool = True  # cache-hit and dedup-join phases
    server: str | None = None  # the gateway's HTTP server (`serve --server`); None = its default

    def count(self, c: int) -> int:
        return self.requests_c1 if c == 1 else self.requests


@dataclass(slots=True)
class Row:
    target: str  # "direct", a config name, or "litellm"
    stream: bool
    concurrency: int
    sample: Sample
    cpu_s: float | None = None
    rss_mb: float | None = None
    peak_rss_mb: float | None = None
    note: str = ""

    def as_dict(self, direct: Row | None) -> dict[str, Any]:
        s = self.sample
        out: dict[str, Any] = {
            "target": self.target, "stream": self.stream, "concurrency": self.concurrency, "note": self.note,
            "requests": s.requests, "errors": s.errors, "seconds": round(s.seconds, 3), "rps": round(s.rps, 1),
            "p50_ms": _ms(s.p(0.5)), "p99_ms": _ms(s.p(0.99)),
            "ttfc_p50_ms": _ms(s.p(0.5, first=True)), "ttfc_p99_ms": _ms(s.p(0.99, first=True)),
            "cpu_s_per_1k": round(self.cpu_s / s.requests * 1000, 3) if self.cpu_s is not None and s.requests else None,
            "rss_mb": _r(self.rss_mb), "peak_rss_mb": _r(self.peak_rss_mb),
        }
        if direct is not None and direct is not self:
            for key in ("p50_ms", "p99_ms", "ttfc_p50_ms", "ttfc_p99_ms"):
                mine, base = out[key], direct.as_dict(None)[key]
                out[f"added_{key}"] = round(mine - base, 3) if mine is not None and base is not None else None
        return out


@dataclass(slots=True)
class Result:
    rows: list[Row] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def direct(self, stream: bool, c: int) -> Row | None:
        return next((r for r in self.rows if r.target == "direct" and r.stream == stream and r.concurrency == c), None)

    def as_json(self) -> dict[str, Any]:
        return {"meta": self.meta,
                "rows": [r.as_dict(self.direct(r.stream, r.concurrency)) for r in self.rows]}


def bodies(stream: bool, n: int = 4096, same: bool = False, extra: dict[str, Any] | None = None) -> list[bytes]:
    """Distinct request bodies (so the cache misses), or one repeated body when ``same``."""
    out = []
    for i in range(1 if same else n):
        body: dict[str, Any] = {"model": configs.MODEL, "stream": stream, "max_tokens": 64,
                                "messages": [{"role": "system", "content": "You are a terse assistant."},
                                             {"role": "user", "content": f"Say hello to bench client number {i}."}]}
        out.append(orjson.dumps({**body, **(extra or {})}))
    return out


Log = Callable[[str], None]


def _pin_self() -> None:
    if (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(0, {CLIENT_CORE})


def run(plan: Plan, workdir: Path | None = None, log: Log = lambda m: print(m, file=sys.stderr)) -> Result:
    _pin_self()
    result = Result(meta={"cpus": os.cpu_count(), "python": sys.version.split()[0], "plan": {
        "concurrency": plan.concurrency, "requests": plan.requests, "requests_c1": plan.requests_c1,
        "warmup": plan.warmup, "configs": plan.configs, "server": plan.server or "default"}})
    with tempfile.TemporaryDirectory(prefix="llmrelay-bench-") as tmp:
        work = workdir or Path(tmp)
        up_port = procs.free_port()
        up = [sys.executable, str(HERE / "upstream.py"), "--port", str(up_port)]
        with procs.started(up, up_port, CLIENT_CORE):
            url = f"http://127.0.0.1:{up_port}/v1/chat/completions"
            for stream in (False, True):
                for c in plan.concurrency:
                    sample = _phase(url, bodies(stream), {}, c, plan.count(c), stream, plan)
                    result.rows.append(Row("direct", stream, c, sample))
                    log(f"direct stream={stream} c={c}: {sample.rps:.0f} rps p50 {_ms(sample.p(0.5))} ms")
            for name in plan.configs:
                cfg = configs.prepare(name, up_port, work)
                _gateway(result, name, functools.partial(configs.gateway_argv, server=plan.server), cfg, plan,
                         work, log)
            if plan.litellm:
                from .litellm import litellm_argv, prepare_litellm

                lcfg = prepare_litellm(up_port, work)
                _gateway(result, "litellm", litellm_argv(plan.litellm), lcfg, plan, work, log)
    return result


def _gateway(result: Result, name: str, argv_for: Any, cfg: Any, plan: Plan, work: Path, log: Log) -> None:
    port = procs.free_port()
    is_litellm = name == "litellm"
    # LiteLLM would fetch its price map from the internet at start-up; this run stays on loopback.
    env = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_TELEMETRY": "False"} if is_litellm else None
    with procs.started(argv_for(cfg, port), port, GATEWAY_CORE, env=env, log=work / f"{name}.log",
                       timeout_s=120) as proc:
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        headers = {"authorization": f"Bearer {cfg.api_key}", "content-type": "application/json"}
        result.meta.setdefault("start_rss_mb", {})[name] = _r(procs.usage(proc.pid).rss_mb)
        for stream in (False, True):
            for c in plan.concurrency:
                n = plan.litellm_requests if is_litellm else plan.count(c)
                result.rows.append(_measured(proc.pid, name, url, bodies(stream), headers, c, n, stream, plan))
                log(_line(result.rows[-1]))
        if plan.extras and name == "all":
            # temperature 0: the cache stores deterministic requests only (as shipped); without it
            # every "hit" went upstream (rounds one to five measured misses here).
            one = bodies(False, same=True, extra={"temperature": 0})
            result.rows.append(_measured(proc.pid, name, url, one, headers, 16, plan.requests, False, plan,
                                         note="cache hit (one repeated body)"))
            log(_line(result.rows[-1]))
        if plan.extras and name == "default":
            slow = bodies(False, same=True, extra={"temperature": 0, "messages": [
                {"role": "user", "content": "bench-slow: one question everyone asks"}]})
            result.rows.append(_measured(proc.pid, name, url, slow, headers, 64, plan.requests // 2, False, plan,
                                         note="dedup: 64 identical requests in flight, upstream 50 ms"))
            log(_line(result.rows[-1]))


def _measured(pid: int, name: str, url: str, bodies_: Sequence[bytes], headers: dict[str, str], c: int, n: int,
              stream: bool, plan: Plan, note: str = "") -> Row:
    _phase(url, bodies_, headers, c, min(plan.warmup, n), stream, plan)
    before = procs.usage(pid)
    sample = _phase(url, bodies_, headers, c, n, stream, plan)
    after = procs.usage(pid)
    return Row(name, stream, c, sample, procs.cpu_between(before, after), after.rss_mb, after.peak_rss_mb, note)


def _phase(url: str, bodies_: Sequence[bytes], headers: dict[str, str], c: int, n: int, stream: bool,
           plan: Plan) -> Sample:
    hdrs = {"content-type": "application/json", **headers}
    return _run(run_load(url, bodies_, hdrs, c, n, stream, plan.max_seconds))


def _run(coro: Any) -> Any:
    try:
        import uvloop

        return uvloop.run(coro)
    except ImportError:
        return asyncio.run(coro)


def _line(r: Row) -> str:
    s = r.sample
    cpu = f"{r.cpu_s / s.requests * 1000:.3f}" if r.cpu_s is not None and s.requests else "-"
    return (f"{r.target} stream={r.stream} c={r.concurrency}{' ' + r.note if r.note else ''}: {s.rps:.0f} rps, "
            f"p50 {_ms(s.p(0.5))} ms, p99 {_ms(s.p(0.99))} ms, cpu/1k {cpu} s, rss {_r(r.rss_mb)} MB, errors {s.errors}")


def _ms(v: float | None) -> float | None:
    return round(v * 1000, 3) if v is not None else None


def _r(v: float | None) -> float | None:
    return round(v, 1) if v is not None else None


def quick_plan() -> Plan:
    """What ``llmrelay bench`` runs: two configurations, 1 and 16 clients, a few seconds in all."""
    return Plan(configs=("passthrough", "default"), concurrency=(1, 16), requests=600, requests_c1=300,
                warmup=50, max_seconds=5.0, extras=False)
