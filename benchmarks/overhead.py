"""The overhead benchmark (issue #11): llmrelay against direct calls (and LiteLLM, if installed).

    python benchmarks/overhead.py                         # full run, about two minutes
    python benchmarks/overhead.py --quick                 # a few seconds
    python benchmarks/overhead.py --litellm /tmp/litellm-venv/bin/litellm

Writes benchmarks/results/overhead.json and overhead.md (or --out DIR) and prints the table.
Only 127.0.0.1 is used; every phase is bounded in requests and seconds.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.harness import report, runner


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short run (a few seconds)")
    parser.add_argument("--configs", default=",".join(runner.configs.CONFIGS))
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--litellm", default=None, help="path of LiteLLM's `litellm` executable (its proxy)")
    parser.add_argument("--server", default=None, choices=("auto", "uvicorn", "granian"),
                        help="the gateway's HTTP server (serve --server; default: the gateway's default)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    args = parser.parse_args()
    plan = runner.quick_plan() if args.quick else runner.Plan(
        configs=tuple(args.configs.split(",")), requests=args.requests, requests_c1=max(200, args.requests // 2),
        litellm=args.litellm, server=args.server)
    result = runner.run(plan)
    table = report.markdown(result)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "overhead-quick" if args.quick else "overhead"
    report.write(result, args.out / f"{stem}.json", args.out / f"{stem}.md")
    print(table)


if __name__ == "__main__":
    main()
