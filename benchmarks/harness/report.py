"""The benchmark's results as JSON and as a markdown table (one row per target, mode and clients)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .runner import Result

COLUMNS = (
    ("target", "target"), ("mode", "mode"), ("concurrency", "clients"), ("rps", "req/s"),
    ("p50_ms", "p50 ms"), ("p99_ms", "p99 ms"), ("added_p50_ms", "added p50 ms"), ("added_p99_ms", "added p99 ms"),
    ("ttfc_p50_ms", "TTFC p50 ms"), ("added_ttfc_p50_ms", "added TTFC p50 ms"),
    ("cpu_s_per_1k", "CPU s / 1k req"), ("rss_mb", "RSS MB"), ("errors", "errors"),
)


def markdown(result: Result) -> str:
    return markdown_rows(result.as_json())


def markdown_rows(data: dict[str, Any]) -> str:
    """The table from the JSON form (so a saved run can be printed again)."""
    lines = ["| " + " | ".join(title for _, title in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in data["rows"]:
        row = {**row, "mode": ("stream" if row["stream"] else "plain") + (f" ({row['note']})" if row["note"] else "")}
        lines.append("| " + " | ".join(_cell(row.get(key)) for key, _ in COLUMNS) + " |")
    ratios = throughput_ratios(data["rows"])
    if ratios:
        lines += ["", "Throughput per gateway core, llmrelay / LiteLLM (non-streamed, same run):", ""]
        lines += [f"- {name}, {c} clients: {ratio:.1f}x" for (name, c), ratio in sorted(ratios.items())]
    cpu = cpu_ratios(data["rows"])
    if cpu:
        lines += ["", "Gateway CPU per request, LiteLLM / llmrelay (the work per request, independent of other load "
                  "on the machine):", ""]
        lines += [f"- {name}, {'stream' if st else 'plain'}, {c} clients: {ratio:.1f}x"
                  for (name, st, c), ratio in sorted(cpu.items())]
    return "\n".join(lines)


def cpu_ratios(rows: list[dict[str, Any]]) -> dict[tuple[str, bool, int], float]:
    lite = {(r["stream"], r["concurrency"]): r["cpu_s_per_1k"] for r in rows
            if r["target"] == "litellm" and r["cpu_s_per_1k"]}
    return {(r["target"], r["stream"], r["concurrency"]): lite[(r["stream"], r["concurrency"])] / r["cpu_s_per_1k"]
            for r in rows if r["target"] not in ("litellm", "direct") and not r["note"] and r["cpu_s_per_1k"]
            and (r["stream"], r["concurrency"]) in lite}


def throughput_ratios(rows: list[dict[str, Any]]) -> dict[tuple[str, int], float]:
    lite = {r["concurrency"]: r["rps"] for r in rows if r["target"] == "litellm" and not r["stream"] and r["rps"]}
    return {(r["target"], r["concurrency"]): r["rps"] / lite[r["concurrency"]]
            for r in rows if r["target"] not in ("litellm", "direct") and not r["stream"] and not r["note"]
            and r["concurrency"] in lite}


def write(result: Result, json_path: Path, md_path: Path) -> None:
    json_path.write_text(json.dumps(result.as_json(), indent=2) + "\n")
    md_path.write_text(markdown(result) + "\n")


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}"
    return str(v)
