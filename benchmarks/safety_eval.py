"""Safety evaluation on the labelled public data (../shared/data/safety) and the latency benchmark.

    python benchmarks/safety_eval.py            # recall per file and FP on benign, at each level
    python benchmarks/safety_eval.py --json     # the same as JSON

Recall: a row of ``jailbreak.jsonl`` counts as caught when the level produces a non-allow decision
with an ``injection`` finding (``toxic`` -> toxicity, ``pii`` -> pii, ``secret`` -> secret); at
``moderate``/``strict`` we also report how many would be *acted on* (blocked or redacted). The
false-positive rate is the share of ``benign.jsonl`` rows with any finding kept by the level.
Nothing here is fitted on this data: the detectors are hand-written patterns and lexicons, so
these are untuned figures (the held-out split lives elsewhere).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

from llmrelay.safety.engine import SafetyEngine
from llmrelay.safety.policy import policy_for_level

DATA = Path(os.environ.get("LLMRELAY_SHARED", Path(__file__).resolve().parents[2] / "shared")) / "data" / "safety"
FILES = {"jailbreak": "injection", "toxic": "toxicity", "pii": "pii", "secret": "secret"}
LEVELS = ("low", "moderate", "strict")


def rows(name: str) -> list[dict[str, object]]:
    with open(DATA / f"{name}.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def evaluate(engine: SafetyEngine) -> dict[str, dict[str, float]]:
    benign = rows("benign")
    positives = {name: rows(name) for name in FILES}
    out: dict[str, dict[str, float]] = {}
    for level in LEVELS:
        policy = policy_for_level(level)
        res: dict[str, float] = {}
        for name, cat in FILES.items():
            caught = acted = 0
            for r in positives[name]:
                d = engine.inspect(str(r["text"]), policy)
                hits = [a for f, a in zip(d.findings, d.actions, strict=True) if f.category == cat]
                caught += bool(hits)
                acted += any(a in ("block", "redact") for a in hits)
            res[f"recall_{name}"] = caught / len(positives[name])
            res[f"acted_{name}"] = acted / len(positives[name])
        fp = fp_acted = 0
        for r in benign:
            d = engine.inspect(str(r["text"]), policy)
            fp += bool(d.findings)
            fp_acted += d.action in ("block", "redact")
        res["fp_benign"] = fp / len(benign)
        res["fp_benign_acted"] = fp_acted / len(benign)
        out[level] = res
    return out


def latency(engine: SafetyEngine, level: str = "moderate", size: int = 4096, runs: int = 300) -> dict[str, float]:
    """Time to inspect a realistic 4 KB prompt (benign prose with an email and a key in it)."""
    filler = " ".join(str(r["text"]) for r in rows("benign")[:60])
    text = (filler[: size - 120] + " contact ops@example.com, key AKIAIOSFODNN7EXAMPLE, call +1 415 555 0100.")[:size]
    policy = policy_for_level(level)
    for _ in range(20):
        engine.inspect(text, policy)
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        engine.inspect(text, policy)
        samples.append((time.perf_counter() - t0) * 1000)
    samples.sort()
    return {"bytes": len(text.encode()), "p50_ms": statistics.median(samples), "p95_ms": samples[int(runs * 0.95)], "min_ms": samples[0]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--no-latency", action="store_true")
    args = ap.parse_args()
    if not DATA.is_dir():
        print(f"no data at {DATA}", file=sys.stderr)
        return 1
    engine = SafetyEngine()
    result: dict[str, object] = {"quality": evaluate(engine)}
    if not args.no_latency:
        result["latency_moderate_4kb"] = latency(engine)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    for level, res in result["quality"].items():  # type: ignore[union-attr]
        print(f"{level:>9}: " + "  ".join(f"{k}={v:.3f}" for k, v in res.items()))
    if "latency_moderate_4kb" in result:
        print("moderate policy, 4 KB prompt:", {k: round(v, 3) for k, v in result["latency_moderate_4kb"].items()})  # type: ignore[union-attr]
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
