"""Train the learned lexicons (src/llmrelay/safety/data/lexicon.json.gz) and measure them honestly.

    python scripts/train_safety_lexicon.py              # cross-validate, choose knots, write the file
    python scripts/train_safety_lexicon.py --cv-only    # cross-validated figures only (JSON), no write

Needs scikit-learn (a dev tool: the gateway reads only the shipped JSON). One L2-regularised
logistic regression per category over word presence (the words ``TextView.words`` yields; for
toxicity, of the de-obfuscated text), classes weighted equally. Words seen in fewer than
``MIN_DF`` training rows are dropped, and so are weights under ``PRUNE``. Heads, positives and
negatives are those of ``train_safety_scorer.py`` (injection: jailbreak vs everything else;
toxicity: toxic vs benign, pii and secret).

Honesty: the figures come from the detectors themselves (regexes plus a lexicon trained without
the rows they judge), run on out-of-fold rows. Folds are grouped by ``source`` (the
``train_safety_scorer.py`` machinery: one source file never straddles train and test), or
``random``: stratified by file, ungrouped, so near-duplicate rows (DAN variants, one template with
many goals) sit on both sides and flatter the figure. Each outer fold picks its own knots from an
inner grouped CV on its training part only (nested). The shipped model is trained on all rows,
with knots from the source-grouped out-of-fold margins; its figures on the same rows are
in-sample and say only that the shipped file matches the CV.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import train_safety_scorer as base  # noqa: E402  (the shared data loading and CV folds)

from llmrelay.safety.detectors import default_detectors, linear  # noqa: E402
from llmrelay.safety.detectors._view import TextView  # noqa: E402
from llmrelay.safety.detectors.injection import InjectionDetector  # noqa: E402
from llmrelay.safety.detectors.toxicity import ToxicityDetector, clean_view  # noqa: E402
from llmrelay.safety.engine import SafetyEngine  # noqa: E402
from llmrelay.safety.policy import policy_for_level  # noqa: E402

OUT = linear.DATA
HEADS = base.HEADS
# Inverse regularisation per head (chosen on source-grouped CV among 0.3, 1, 3; L1 and elastic-net
# were sparser but 5-9 points worse at the same false-positive rate).
C = {"injection": 0.3, "toxicity": 1.0}
MIN_DF = 2
PRUNE = 0.02
# Benign false-positive budgets (out-of-fold, per head) and the policy score each maps to: a margin
# at the ``strict`` budget scores 0.4 (strict flags), ``flag`` 0.5 (low and moderate flag), ``block``
# 0.8 (moderate blocks). The regexes already flag ~0.6% of benign rows, and budgets chosen on the
# inner folds are exceeded on sources the model never saw (0.3% inner became +1.7% outer), so
# ``flag`` sits above every inner out-of-fold benign row and ``block`` BLOCK_OFFSET logits above it.
BUDGETS = (("strict", 0.002, 0.4), ("flag", 0.0, 0.5), ("block", 0.0, 0.8))
BLOCK_OFFSET = 1.0
FOLDS = base.FOLDS
WordSets = list[frozenset[str]]


def word_sets(rows: Sequence[dict[str, Any]], category: str) -> WordSets:
    """What the detector's lexicon reads for each row (the same code path as at run time)."""
    if category == "toxicity":
        return [clean_view(TextView(r["text"])).words for r in rows]
    return [TextView(r["text"]).words for r in rows]


def fit(words: WordSets, y: np.ndarray, mask: np.ndarray, c: float) -> linear.LinearLexicon:
    """A model (uncalibrated: one knot at 0) on the rows in ``mask``."""
    from scipy.sparse import csr_matrix
    from sklearn.linear_model import LogisticRegression

    idx = np.flatnonzero(mask)
    df: dict[str, int] = {}
    for i in idx:
        for w in words[i]:
            df[w] = df.get(w, 0) + 1
    vocab = sorted(w for w, n in df.items() if n >= MIN_DF)
    col = {w: j for j, w in enumerate(vocab)}
    ind: list[int] = []
    ptr = [0]
    for i in idx:
        ind += [col[w] for w in words[i] if w in col]
        ptr.append(len(ind))
    x = csr_matrix((np.ones(len(ind)), ind, ptr), shape=(len(idx), len(vocab)))
    model = LogisticRegression(C=c, solver="liblinear", class_weight="balanced", max_iter=5000)
    model.fit(x, y[idx])
    weights = {w: round(float(v), 4) for w, v in zip(vocab, model.coef_[0], strict=True) if abs(v) >= PRUNE}
    return linear.LinearLexicon("", round(float(model.intercept_[0]), 4), weights, (0.0,), (0.5,))


def margins(model: linear.LinearLexicon, words: WordSets) -> np.ndarray:
    return np.array([model.margin(w) for w in words])


def knots(benign_margins: np.ndarray) -> tuple[float, ...]:
    """Margin for each budget: at most that share of benign rows scores at or above it."""
    s = np.sort(benign_margins)[::-1]
    out: list[float] = []
    for _, budget, _ in BUDGETS:
        k = int(budget * len(s))
        out.append(round(float(s[k]) + 1e-4, 4) if k < len(s) else float(s[-1]))
    out[-1] = max(out[-1], out[-2] + BLOCK_OFFSET)
    for i in range(1, len(out)):
        out[i] = max(out[i], out[i - 1] + 1e-4)  # knots must increase with their score
    return tuple(out)


def calibrated(category: str, model: linear.LinearLexicon, k: tuple[float, ...]) -> linear.LinearLexicon:
    return linear.LinearLexicon(category, model.bias, model.weights, k, tuple(s for _, _, s in BUDGETS))


class Head:
    """One category's training set over all rows: labels, which rows take part, their words."""

    def __init__(self, category: str, rows: list[dict[str, Any]]) -> None:
        pos, neg = HEADS[category]
        self.category = category
        self.y = np.array([1 if r["file"] == pos else 0 for r in rows])
        self.used = np.array([r["file"] == pos or r["file"] in neg for r in rows])
        self.benign = np.array([r["file"] == "benign" for r in rows])
        self.words = word_sets(rows, category)

    def oof_margins(self, groups: list[str], train: np.ndarray, k: int) -> np.ndarray:
        """Out-of-fold margins for the rows in ``train``, ``k`` folds grouped by ``groups``."""
        idx = np.flatnonzero(train)
        folds = np.full(len(groups), -1)
        folds[idx] = base.group_folds([groups[i] for i in idx], k)
        out = np.full(len(groups), np.nan)
        for f in range(k):
            model = fit(self.words, self.y, train & self.used & (folds != f), C[self.category])
            test = train & (folds == f)
            out[test] = margins(model, [self.words[i] for i in np.flatnonzero(test)])
        return out

    def model(self, groups: list[str], train: np.ndarray) -> linear.LinearLexicon:
        """Trained on ``train``; knots from an inner grouped CV on ``train`` only."""
        inner = self.oof_margins(groups, train, FOLDS - 1)
        model = fit(self.words, self.y, train & self.used, C[self.category])
        return calibrated(self.category, model, knots(inner[train & self.benign]))


def grouping(rows: list[dict[str, Any]], by: str) -> list[str]:
    if by == "random":
        # Every row its own group, keyed by file first: group_folds then deals each file's rows
        # round-robin in hash order, so the folds are stratified by label.
        return [f"{r['file']}:{hashlib.sha256(r['text'].encode()).hexdigest()[:12]}" for r in rows]
    return base.grouping(rows, by)


def scan_scores(engine: SafetyEngine, rows: Sequence[dict[str, Any]]) -> list[dict[str, float]]:
    """The strongest score per category for each row (what any level then decides on)."""
    policy = policy_for_level("strict")
    out = []
    for r in rows:
        best: dict[str, float] = {}
        for f in engine.scan(r["text"], policy, learned=False):
            best[f.category] = max(best.get(f.category, 0.0), f.score)
        out.append(best)
    return out


def engine_with(models: dict[str, linear.LinearLexicon | None]) -> SafetyEngine:
    """The shipped detector set (every detector the engine runs by default), with the injection and
    toxicity detectors given ``models`` instead of the shipped lexicon."""
    swap = {InjectionDetector: lambda: InjectionDetector(models.get("injection")),
            ToxicityDetector: lambda: ToxicityDetector(models.get("toxicity"))}
    return SafetyEngine(detectors=tuple(swap[type(d)]() if type(d) in swap else d for d in default_detectors()))


def by_file(rows: list[dict[str, Any]], per_row: list[dict[str, float]]) -> dict[str, list[dict[str, float]]]:
    out: dict[str, list[dict[str, float]]] = {}
    for r, s in zip(rows, per_row, strict=True):
        out.setdefault(r["file"], []).append(s)
    return out


def cross_validate(by: str = "source", log: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Out-of-fold detector scores (regexes + a lexicon that never saw the row), per file and row."""
    rows = base.load_rows()
    groups = grouping(rows, by)
    folds = base.group_folds(groups, FOLDS)
    heads = [Head(cat, rows) for cat in HEADS]
    per_row: list[dict[str, float]] = [{} for _ in rows]
    sizes: list[dict[str, int]] = []
    for f in range(FOLDS):
        train = folds != f
        models: dict[str, linear.LinearLexicon | None] = {h.category: h.model(groups, train) for h in heads}
        sizes.append({c: len(m.weights) for c, m in models.items() if m is not None})
        test = np.flatnonzero(~train)
        for i, s in zip(test, scan_scores(engine_with(models), [rows[i] for i in test]), strict=True):
            per_row[i] = s
        log(f"{by} fold {f}: {len(test)} rows, vocab {sizes[-1]}")
    return {"grouped_by": by, "data_sha256": base.data_hash(), "vocab_per_fold": sizes, "scores": by_file(rows, per_row)}


def train(log: Callable[[str], None] = lambda _: None) -> dict[str, linear.LinearLexicon]:
    """The shipped models: all rows; knots from source-grouped out-of-fold margins."""
    rows = base.load_rows()
    groups = base.grouping(rows, "source")
    everything = np.ones(len(rows), dtype=bool)
    out = {}
    for cat in HEADS:
        head = Head(cat, rows)
        oof = head.oof_margins(groups, everything, FOLDS)
        model = fit(head.words, head.y, head.used, C[cat])
        out[cat] = calibrated(cat, model, knots(oof[head.benign]))
        log(f"{cat}: {len(model.weights)} words, knots {out[cat].knots}")
    return out


def write(models: dict[str, linear.LinearLexicon], out: Path = OUT) -> int:
    doc = {
        "format": linear.FORMAT,
        "trained_by": "scripts/train_safety_lexicon.py",
        "data_sha256": base.data_hash(),
        "settings": {"C": C, "min_df": MIN_DF, "prune": PRUNE, "budgets": BUDGETS},
        "models": {cat: m.to_dict() for cat, m in models.items()},
    }
    data = gzip.compress(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode(), mtime=0)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    return len(data)


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--cv-only", action="store_true", help="print the cross-validated scores' summary and write nothing")
    ap.add_argument("--by", default="source,random", help="CV groupings (source, family, random)")
    args = ap.parse_args()

    def log(msg: str) -> None:
        print(msg, file=sys.stderr)

    if args.cv_only:
        for by in args.by.split(","):
            res = cross_validate(by, log)
            print(json.dumps({"grouped_by": by, "vocab_per_fold": res["vocab_per_fold"]}))
        return 0
    size = write(train(log))
    log(f"wrote {OUT} ({size} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
