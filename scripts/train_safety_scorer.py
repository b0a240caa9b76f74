"""Train the learned safety scorer (src/llmrelay/safety/data/scorer.npz) and measure it honestly.

    python scripts/train_safety_scorer.py            # cross-validate, choose thresholds, write weights
    python scripts/train_safety_scorer.py --cv-only  # the cross-validated figures only (JSON)

One L2-regularised logistic regression per category (injection, toxicity) over the MiniLM window
embeddings (first and last 256 tokens; a text scores the max over its windows). Data: the labelled
development rows in ../shared/data/safety. Injection positives are ``jailbreak.jsonl`` against every
other file; toxicity positives are ``toxic.jsonl`` against benign, pii and secret (jailbreaks are left
out of the toxicity negatives: many of them are abusive on purpose).

Honesty: folds are grouped by ``source`` (every row of one source file is in one fold, so near-duplicate
templates never straddle train and test), and the thresholds each fold is judged with are chosen by an
inner grouped cross-validation on that fold's training part only (nested). The thresholds shipped
are chosen on the outer out-of-fold scores. ``--by family`` groups by repository instead
(leave-one-family-out, the harder question: does it catch attacks from a source it never saw?).

Thresholds are benign false-positive budgets, mapped onto the policy's score scale so the levels
keep their meaning: a raw probability at the ``flag`` budget scores 0.5 (low and moderate flag,
strict blocks injection), at the ``block`` budget 0.8 (moderate blocks), at the ``strict`` budget
0.4 (strict flags).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("LLMRELAY_SHARED", ROOT.parent / "shared")) / "data" / "safety"
OUT = ROOT / "src" / "llmrelay" / "safety" / "data" / "scorer.npz"
FILES = ("jailbreak", "toxic", "pii", "secret", "benign")
# category -> (positive file, negative files)
HEADS = {"injection": ("jailbreak", ("benign", "toxic", "pii", "secret")), "toxicity": ("toxic", ("benign", "pii", "secret"))}
# Benign false-positive budgets (out-of-fold) and the policy score each maps to.
BUDGETS = (("strict", 0.01, 0.4), ("flag", 0.002, 0.5), ("block", 0.001, 0.8))
L2 = 1.0
FOLDS = 5


def load_rows() -> list[dict[str, Any]]:
    rows = []
    for name in FILES:
        with open(DATA / f"{name}.jsonl", encoding="utf-8") as f:
            rows += [{**json.loads(line), "file": name} for line in f if line.strip()]
    return rows


def data_hash() -> str:
    h = hashlib.sha256()
    for name in FILES:
        h.update((DATA / f"{name}.jsonl").read_bytes())
    return h.hexdigest()


def embed_all(rows: list[dict[str, Any]], digest: str) -> tuple[np.ndarray, np.ndarray]:
    """(window vectors, row index of each window), cached per data hash and embedding code (a change to
    llmrelay/embeddings.py, such as its tokenisation, makes new vectors): embedding is the slow part."""
    import llmrelay.embeddings

    code = hashlib.sha256(Path(llmrelay.embeddings.__file__).read_bytes()).hexdigest()[:8]
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "llmrelay" / f"safety-windows-{digest[:16]}-{code}.npz"
    if cache.exists():
        z = np.load(cache)
        return z["x"], z["row"]
    from llmrelay.embeddings import MiniLM

    model = MiniLM(threads=2)
    xs, idx = [], []
    for i, r in enumerate(rows):
        vecs, _ = model.windows(r["text"])
        xs.append(vecs)
        idx += [i] * len(vecs)
        if i % 250 == 0:
            print(f"embedded {i}/{len(rows)}", file=sys.stderr)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, x=np.concatenate(xs).astype(np.float32), row=np.array(idx))
    return np.load(cache)["x"], np.load(cache)["row"]


def fit(x: np.ndarray, y: np.ndarray, l2: float = L2, iters: int = 25) -> tuple[np.ndarray, float]:
    """Logistic regression by Newton's method (IRLS), classes weighted to equal total weight (the
    positives are a minority); L2 on the weights, not on the bias."""
    xb = np.hstack([x, np.ones((len(x), 1))])
    sw = np.where(y == 1, 0.5 / max(y.mean(), 1e-9), 0.5 / max(1 - y.mean(), 1e-9))
    w = np.zeros(xb.shape[1])
    reg = np.full(xb.shape[1], l2)
    reg[-1] = 0.0
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-(xb @ w)))
        grad = xb.T @ ((p - y) * sw) + reg * w
        hess = (xb * (p * (1 - p) * sw)[:, None]).T @ xb + np.diag(reg + 1e-9)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-6:
            break
    return w[:-1], float(w[-1])


def row_scores(x: np.ndarray, row: np.ndarray, n_rows: int, w: np.ndarray, b: float) -> np.ndarray:
    """Each row's probability: the max over its windows (rows without windows score 0)."""
    p = 1.0 / (1.0 + np.exp(-(x @ w + b)))
    out = np.zeros(n_rows)
    np.maximum.at(out, row, p)
    return out


def group_folds(groups: list[str], k: int) -> np.ndarray:
    """Fold of each row: whole groups, largest first onto the smallest fold (deterministic)."""
    sizes: dict[str, int] = {}
    for g in groups:
        sizes[g] = sizes.get(g, 0) + 1
    load = [0] * k
    fold_of: dict[str, int] = {}
    for g in sorted(sizes, key=lambda g: (-sizes[g], g)):
        f = min(range(k), key=lambda i: (load[i], i))
        fold_of[g] = f
        load[f] += sizes[g]
    return np.array([fold_of[g] for g in groups])


def thresholds(benign_scores: np.ndarray) -> list[float]:
    """Raw probability for each budget: at most that share of benign rows scores above it."""
    s = np.sort(benign_scores)[::-1]
    out = []
    for _, budget, _ in BUDGETS:
        k = int(budget * len(s))
        out.append(float(s[k]) + 1e-6 if k < len(s) else 0.0)
    # Knots must increase with the score they map to.
    for i in range(1, len(out)):
        out[i] = max(out[i], out[i - 1] + 1e-6)
    return out


def calibrate(p: np.ndarray | float, knots: list[float]) -> Any:
    """Raw probability -> policy score: piecewise linear through the budget knots."""
    xs = [0.0, *knots, 1.0 + 1e-6]
    ys = [0.0, *(score for _, _, score in BUDGETS), 1.0]
    return np.interp(p, xs, ys)


class Head:
    """One category's training set: which rows take part and their labels."""

    def __init__(self, category: str, rows: list[dict[str, Any]]) -> None:
        pos, neg = HEADS[category]
        self.category = category
        self.used = np.array([r["file"] == pos or r["file"] in neg for r in rows])
        self.y = np.array([1.0 if r["file"] == pos else 0.0 for r in rows])
        self.benign = np.array([r["file"] == "benign" for r in rows])

    def train(self, x: np.ndarray, row: np.ndarray, rows_mask: np.ndarray) -> tuple[np.ndarray, float]:
        keep = rows_mask[row]
        return fit(x[keep], self.y[row[keep]])


def nested_cv(head: Head, x: np.ndarray, row: np.ndarray, groups: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold (raw probability, policy score) per row; each fold's thresholds come from an inner
    grouped CV on its own training part, so the held-out fold never picks its thresholds."""
    n = len(groups)
    folds = group_folds(groups, FOLDS)
    raw, score = np.full(n, np.nan), np.full(n, np.nan)
    for f in range(FOLDS):
        train = head.used & (folds != f)
        test = head.used & (folds == f)
        if not test.any():
            continue
        knots = thresholds(inner_oof(head, x, row, groups, train)[train & head.benign])
        w, b = head.train(x, row, train)
        p = row_scores(x, row, n, w, b)
        raw[test] = p[test]
        score[test] = calibrate(p[test], knots)
    return raw, score


def inner_oof(head: Head, x: np.ndarray, row: np.ndarray, groups: list[str], train: np.ndarray) -> np.ndarray:
    n = len(groups)
    idx = np.flatnonzero(train)
    inner = np.full(n, -1)
    inner[idx] = group_folds([groups[i] for i in idx], FOLDS - 1)
    out = np.full(n, np.nan)
    for g in range(FOLDS - 1):
        w, b = head.train(x, row, train & (inner != g))
        test = train & (inner == g)
        out[test] = row_scores(x, row, n, w, b)[test]
    return out


def grouping(rows: list[dict[str, Any]], by: str) -> list[str]:
    if by == "family":
        return [r["source"].split(":")[0] for r in rows]
    if by == "random":
        # Not grouped (near-duplicates may leak): shown only to say how much grouping costs.
        return [hashlib.sha256(r["text"].encode()).hexdigest()[:8] for r in rows]
    return [r["source"] for r in rows]


def summarise(rows: list[dict[str, Any]], scores: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """Learned scorer alone, per level: recall per positive file (caught = flagged or acted on,
    acted = blocked) and the share of benign rows it reports at all."""
    from llmrelay.safety.policy import policy_for_level

    files = np.array([r["file"] for r in rows])
    out: dict[str, dict[str, float]] = {}
    for level in ("low", "moderate", "strict"):
        policy = policy_for_level(level)
        res: dict[str, float] = {}
        any_benign = np.zeros((files == "benign").sum(), dtype=bool)
        for cat, s in scores.items():
            rule = policy.rule(cat)
            pos = HEADS[cat][0]
            caught = np.nan_to_num(s[files == pos]) >= min(rule.flag_at, rule.threshold)
            acted = np.nan_to_num(s[files == pos]) >= rule.threshold
            res[f"recall_{pos}"] = float(caught.mean())
            res[f"acted_{pos}"] = float(acted.mean()) if rule.action in ("block", "redact") else 0.0
            any_benign |= np.nan_to_num(s[files == "benign"]) >= min(rule.flag_at, rule.threshold)
        res["fp_benign"] = float(any_benign.mean())
        out[level] = res
    return out


def cross_validate(by: str = "source") -> dict[str, Any]:
    rows = load_rows()
    digest = data_hash()
    x, row = embed_all(rows, digest)
    groups = grouping(rows, by)
    scores = {cat: nested_cv(Head(cat, rows), x, row, groups)[1] for cat in HEADS}
    return {
        "grouped_by": by, "data_sha256": digest, "summary": summarise(rows, scores),
        "rows": [{"file": r["file"], "text_sha1": hashlib.sha1(r["text"].encode()).hexdigest()} for r in rows],
        "scores": {cat: [None if np.isnan(v) else round(float(v), 4) for v in s] for cat, s in scores.items()},
    }


def train_and_write(out: Path = OUT) -> dict[str, Any]:
    rows = load_rows()
    digest = data_hash()
    x, row = embed_all(rows, digest)
    groups = grouping(rows, "source")
    arrays: dict[str, np.ndarray] = {}
    report: dict[str, Any] = {"data_sha256": digest, "l2": L2, "budgets": BUDGETS}
    for cat in HEADS:
        head = Head(cat, rows)
        raw, _ = nested_cv(head, x, row, groups)
        knots = thresholds(raw[head.used & head.benign])
        w, b = head.train(x, row, head.used)
        arrays[f"{cat}_w"] = w.astype(np.float32)
        arrays[f"{cat}_b"] = np.array([b], dtype=np.float32)
        arrays[f"{cat}_knots"] = np.array(knots, dtype=np.float64)
        report[cat] = {"knots": knots, "positives": int(head.y[head.used].sum()), "negatives": int((1 - head.y[head.used]).sum())}
    arrays["scores"] = np.array([s for _, _, s in BUDGETS], dtype=np.float64)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, **arrays)
    return report


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cv-only", action="store_true", help="print the cross-validated figures (JSON) and write nothing")
    ap.add_argument("--by", choices=("source", "family", "random"), default="source", help="CV grouping")
    ap.add_argument("--rows", action="store_true", help="with --cv-only: include per-row out-of-fold scores")
    args = ap.parse_args()
    if args.cv_only:
        res = cross_validate(args.by)
        if not args.rows:
            res.pop("rows"), res.pop("scores")
        print(json.dumps(res, indent=1))
        return 0
    print(json.dumps(train_and_write(), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
