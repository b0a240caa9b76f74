"""Tune and judge the adversarial-suffix detector (src/llmrelay/safety/detectors/adversarial.py).

    python scripts/tune_adversarial_suffix.py                 # per-source table, leave-one-source-out
    python scripts/tune_adversarial_suffix.py --corpus DIR    # also false positives on local files

The detector has no fitted weights; what is tuned is the window score at which it flags and
blocks. Because the token weights were written after reading GCG rows, the figures on those rows
are optimistic, so the script also picks the flag threshold on some attack sources and judges it on
the one left out (GCG white-box, GCG transfer, random search), and measures false positives on
code, configs and docs that are not in the evaluation data at all (``--corpus``: a directory such as
site-packages, cut into 300-4,000-character pieces).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
from collections import Counter
from pathlib import Path

from llmrelay.safety.detectors import adversarial as adv

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("LLMRELAY_SHARED", ROOT.parent / "shared")) / "data" / "safety"
GROUPS = ("GCG/white_box", "GCG/transfer", "prompt_with_random_search", "PAIR", "inthewild", "PurpleLlama", "sysprompt", "giskard")
HELD_OUT = ("GCG/white_box", "GCG/transfer", "prompt_with_random_search")
GRID = [x / 4 for x in range(8, 25)]  # 2.0 .. 6.0
EXTS = (".md", ".rst", ".yaml", ".yml", ".toml", ".json", ".lock", ".txt", ".js", ".css", ".html", ".py", ".pyi", ".cfg", ".ini", ".sh", ".c", ".h", ".xml", ".csv")


def rows(name: str) -> list[dict[str, str]]:
    with open(DATA / f"{name}.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def group(source: str) -> str:
    return next((g for g in GROUPS if g in source), "other")


def corpus(root: Path, files: int = 6000, seed: int = 7) -> list[str]:
    """Pieces of local text files: code, configs, lockfiles, docs (none is in the evaluation data)."""
    paths = sorted(p for p in root.rglob("*") if p.is_file() and (p.suffix in EXTS or p.name == "METADATA"))
    rng = random.Random(seed)
    rng.shuffle(paths)
    out: list[str] = []
    for p in paths[:files]:
        try:
            text = p.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        if len(text) < 200:
            continue
        for _ in range(2):
            n = rng.choice((300, 800, 2000, 4000))
            s = rng.randrange(0, max(1, len(text) - n))
            out.append(text[s : s + n])
    return out


def recall(scores: list[tuple[str, float]], t: float, groups: tuple[str, ...]) -> float:
    hit = [s >= t for g, s in scores if g in groups]
    return sum(hit) / len(hit) if hit else 0.0


def leave_one_out(scores: list[tuple[str, float]], benign: list[float], target: float) -> list[dict[str, object]]:
    """For each held-out attack source: the highest flag threshold that keeps recall >= ``target``
    on the other two with benign FP <= 0.2% (else the lowest with that FP), judged on the held-out one."""
    out: list[dict[str, object]] = []
    for held in HELD_OUT:
        tuned_on = tuple(g for g in HELD_OUT if g != held)
        quiet = [t for t in GRID if sum(b >= t for b in benign) <= 0.002 * len(benign)]
        ok = [t for t in quiet if recall(scores, t, tuned_on) >= target]
        # The highest threshold that keeps the target; if none does, the lowest that is quiet enough.
        t = max(ok) if ok else min(quiet)
        out.append({"held_out": held, "threshold": t, "recall_tuned": round(recall(scores, t, tuned_on), 3),
                    "recall_held_out": round(recall(scores, t, (held,)), 3)})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, help="a directory of local text files for false positives")
    ap.add_argument("--target", type=float, default=0.85, help="recall to keep on the tuning sources")
    args = ap.parse_args()
    jb = [(group(r["source"]), adv.window_score(r["text"])[0]) for r in rows("jailbreak")]
    benign = [adv.window_score(r["text"])[0] for r in rows("benign")]
    toxic = [adv.window_score(r["text"])[0] for r in rows("toxic")]
    # The pre-filter must not lose a window the full scan would flag.
    lost = sum(
        (adv.window_score(r["text"], prefilter=False)[0] >= adv.FLAG_AT) != (adv.window_score(r["text"])[0] >= adv.FLAG_AT)
        for name in ("jailbreak", "benign", "toxic") for r in rows(name)
    )
    n = Counter(g for g, _ in jb)
    print(f"pre-filter disagreements with the full scan at FLAG_AT={adv.FLAG_AT}: {lost}")
    print("| window score >= | " + " | ".join(GROUPS) + " | benign FP | toxic |")
    print("|---:|" + "---:|" * (len(GROUPS) + 2))
    for t in (adv.FLAG_AT, adv.BLOCK_AT):
        cells = [f"{sum(s >= t for g2, s in jb if g2 == g)}/{n[g]}" for g in GROUPS]
        fp = sum(b >= t for b in benign)
        print(f"| {t} | " + " | ".join(cells) + f" | {fp}/{len(benign)} | {sum(x >= t for x in toxic)}/{len(toxic)} |")
    if args.corpus is not None:
        pieces = corpus(args.corpus)
        for t in (adv.FLAG_AT, adv.BLOCK_AT):
            print(f"local corpus ({args.corpus}, {len(pieces)} pieces): {sum(adv.window_score(p)[0] >= t for p in pieces)} at >= {t}")
    print("leave one attack source out (threshold chosen without it):")
    for row in leave_one_out(jb, benign, args.target):
        print("  ", row)


if __name__ == "__main__":
    sys.exit(main())
