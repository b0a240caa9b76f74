"""``llmrelay bench``: a short run of the overhead benchmark (benchmarks/overhead.py), printed as a table.

    llmrelay bench                       # passthrough and default configs, 1 and 16 clients, ~20 s
    llmrelay bench --json                # the rows as JSON

A minimal fake upstream and the gateway (pinned to core 1) run as their own processes on
127.0.0.1; this process is the load generator (pinned to core 0). The harness lives in the source
checkout's ``benchmarks/`` folder, next to ``src/``.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from types import ModuleType

import click

from ._common import fail


def _harness() -> tuple[ModuleType, ModuleType]:
    root = Path(__file__).resolve().parents[3]
    if not (root / "benchmarks" / "harness" / "runner.py").is_file():
        fail("the benchmark harness (benchmarks/harness) is not next to this installation; "
             "run `llmrelay bench` from a source checkout installed with `pip install -e .`")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    from benchmarks.harness import report, runner

    return runner, report


@click.command(name="bench")
@click.option("--configs", default="passthrough,default", show_default=True,
              help="Comma-separated gateway configurations: passthrough, default, all.")
@click.option("--requests", type=click.IntRange(50, 20000), default=600, show_default=True,
              help="Requests per measured phase (16 clients; half of it with one client).")
@click.option("--litellm", default=None, help="Path of LiteLLM's `litellm` executable, to measure it too.")
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON instead of a table.")
# DESIGN: every command takes --config. This one needs no gateway config; the flag is accepted
# so scripts can pass the same options to every command.
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="Accepted like on every command; not needed here.")
def command(configs: str, requests: int, litellm: str | None, as_json: bool, config_path: str | None) -> None:
    """Measure the gateway's added latency, throughput, CPU and memory against direct calls."""
    runner, report = _harness()
    names = tuple(c.strip() for c in configs.split(",") if c.strip())
    unknown = sorted(set(names) - set(runner.configs.CONFIGS))
    if unknown:
        fail(f"unknown configuration(s) {', '.join(unknown)}; choose from {', '.join(runner.configs.CONFIGS)}")
    plan = dataclasses.replace(runner.quick_plan(), configs=names, requests=requests,
                               requests_c1=max(50, requests // 2), litellm=litellm, litellm_requests=100)
    result = runner.run(plan, log=lambda m: click.echo(m, err=True))
    if as_json:
        click.echo(json.dumps(result.as_json(), indent=2))
    else:
        click.echo(report.markdown(result))
