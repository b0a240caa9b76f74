"""Local text classifiers of your choosing (extra ``semantic``): any ONNX sequence-classification model.

The built-in detectors and the learned scorer are trained on public data only; where a prompt-injection
or toxicity model of your own (or a public one: Prompt Guard, a DeBERTa injection classifier, a toxic
comment model) does better on your traffic, point llmrelay at its exported files:

    safety:
      classifiers:
        - path: /models/prompt-guard-2-86m     # model.onnx (or onnx/model.onnx), tokenizer.json, config.json
          category: injection
          labels: [MALICIOUS]                  # positive labels; default: every label but benign-sounding ones
          flag_at: 0.5                         # probability that flags (policy score 0.5)
          block_at: 0.9                        # probability that blocks at moderate (policy score 0.8)

The model is the usual Hugging Face export (``optimum-cli export onnx --task text-classification``):
inputs ``input_ids``, ``attention_mask`` and optionally ``token_type_ids``, first output the logits, one per
label of ``config.json``'s ``id2label``. Softmax or sigmoid follows ``problem_type`` (multi-label models
use sigmoid) unless ``activation`` says otherwise. Nothing is downloaded: the files must be on disk.

A long prompt is read in windows of ``max_tokens`` (overlapping by ``stride``), all of them in one batch;
it scores its most suspicious window, and the finding covers that window's characters. Past
``max_windows`` windows only the first and last halves of that budget are read, so the cost of one
prompt is bounded (the middle of a very long document is then left to the regex detectors).

A classifier's finding counts on its own, at every level (unlike the learned scorer's, which only
strengthens a detector's): you chose the model and its thresholds. Classifiers read prompts only,
off the event loop, like the learned scorer; a text already judged (the earlier turns of a chat, which
every request resends) is answered from a bounded memo (:mod:`.model_memo`).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .findings import Finding
from .learned import to_policy_score
from .model_memo import ModelMemo

# Labels that name the negative class in the common exports ("BENIGN", "SAFE", "LABEL_0" of a
# two-label model is decided by position, see ``positive_labels``).
_NEGATIVE_WORDS = frozenset({"benign", "safe", "neutral", "normal", "clean", "ok", "legit", "legitimate",
                             "non-toxic", "non_toxic", "nontoxic", "not_toxic", "not-toxic", "none", "negative"})
# Generous characters per token when cutting the ends of a huge text (see Classifier._windows).
_CHARS_PER_TOKEN = 16
# Findings under this policy score are dropped: no level flags or acts below 0.4.
_REPORT_AT = 0.4


class ClassifierConfig(BaseModel):
    """One entry of ``safety.classifiers``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    path: str
    name: str | None = None
    # What sequence classifiers judge well: a whole text's intent or tone. (PII and secrets need spans
    # to redact, which a text-level label cannot give.)
    category: Literal["injection", "toxicity"] = "injection"
    # Labels of config.json's id2label that mean "violation"; None: all but the benign-sounding ones.
    labels: tuple[str, ...] | None = None
    activation: Literal["auto", "softmax", "sigmoid"] = "auto"
    flag_at: float = Field(0.5, gt=0, lt=1)
    block_at: float = Field(0.9, gt=0, lt=1)
    max_tokens: int = Field(512, ge=8, le=8192)
    stride: int = Field(32, ge=0)
    max_windows: int = Field(8, ge=1, le=256)
    threads: int = Field(1, ge=1, le=64)
    # Finding type reported (defaults by category: JAILBREAK, TOXIC, ...).
    type: str | None = None

    @model_validator(mode="after")
    def _ordered(self) -> ClassifierConfig:
        if self.block_at <= self.flag_at:
            raise ValueError(f"block_at ({self.block_at}) must be above flag_at ({self.flag_at})")
        if self.stride >= self.max_tokens // 2:
            raise ValueError(f"stride ({self.stride}) must be under half of max_tokens ({self.max_tokens})")
        return self

    @property
    def label(self) -> str:
        return self.name or Path(self.path).name


_TYPES = {"injection": "JAILBREAK", "toxicity": "TOXIC"}


def positive_labels(id2label: dict[int, str], chosen: Sequence[str] | None) -> list[int]:
    """Indices of the labels that count as a violation."""
    names = {i: str(n) for i, n in id2label.items()}
    if chosen is not None:
        wanted = {c.lower() for c in chosen}
        idx = [i for i, n in names.items() if n.lower() in wanted]
        missing = wanted - {n.lower() for n in names.values()}
        if missing:
            raise ValueError(f"labels {sorted(missing)} are not in the model's id2label {sorted(names.values())}")
        return sorted(idx)
    idx = [i for i, n in names.items() if n.lower() not in _NEGATIVE_WORDS]
    if len(names) == 2 and len(idx) == 2:
        return [max(names)]  # LABEL_0 / LABEL_1: the second is the positive class by convention
    if not idx:
        raise ValueError(f"cannot tell which of {sorted(names.values())} mean a violation: set labels")
    return sorted(idx)


def _model_file(root: Path) -> Path:
    for candidate in (root / "model.onnx", root / "onnx" / "model.onnx", root / "model_quantized.onnx",
                      root / "onnx" / "model_quantized.onnx"):
        if candidate.is_file():
            return candidate
    raise ValueError(f"no model.onnx in {root} (nor onnx/model.onnx)")


class _Window:
    """One window to run: its token ids (special tokens included) and the characters it covers."""

    __slots__ = ("ids", "span")

    def __init__(self, ids: list[int], span: tuple[int, int]) -> None:
        self.ids = ids
        self.span = span


def _window(enc: Any) -> _Window:
    """An encoding's ids and the characters its non-special tokens cover."""
    offsets = [o for o, special in zip(enc.offsets, enc.special_tokens_mask, strict=False) if not special]
    return _Window(list(enc.ids), (offsets[0][0], offsets[-1][1]) if offsets else (0, 0))


def _all(enc: Any) -> list[_Window]:
    """The first window and its overflow (each with its special tokens), as plain windows."""
    if not enc.ids:
        return []
    return [_window(enc), *(_window(o) for o in enc.overflowing)]


def _shifted(w: _Window, shift: int) -> _Window:
    return _Window(w.ids, (w.span[0] + shift, w.span[1] + shift))


class Classifier:
    """One model: ``scan(text)`` -> at most one finding, in the configured category. Thread-safe, lazy."""

    def __init__(self, cfg: ClassifierConfig) -> None:
        self.cfg = cfg
        self.name = f"classifier:{cfg.label}"
        self.category = cfg.category
        root = Path(cfg.path)
        if not root.is_dir():
            raise ValueError(f"safety classifier {cfg.label!r}: {root} is not a directory")
        self._model = _model_file(root)
        for needed in ("tokenizer.json", "config.json"):
            if not (root / needed).is_file():
                raise ValueError(f"safety classifier {cfg.label!r}: no {needed} in {root}")
        meta = json.loads((root / "config.json").read_text(encoding="utf-8"))
        id2label = {int(k): v for k, v in (meta.get("id2label") or {}).items()}
        if not id2label:
            raise ValueError(f"safety classifier {cfg.label!r}: config.json has no id2label")
        try:
            self._positive = positive_labels(id2label, cfg.labels)
        except ValueError as exc:
            raise ValueError(f"safety classifier {cfg.label!r}: {exc}") from None
        self._n_labels = len(id2label)
        multi = meta.get("problem_type") == "multi_label_classification"
        self._sigmoid = cfg.activation == "sigmoid" or (cfg.activation == "auto" and (multi or self._n_labels == 1))
        if not self._sigmoid and len(self._positive) == self._n_labels:
            # Softmax over labels that all count: the sum is always 1, so every text would score 1.
            raise ValueError(f"safety classifier {cfg.label!r}: every label of {sorted(id2label.values())} counts as a "
                             "violation under softmax; set labels (or activation: sigmoid for a multi-label model)")
        self._root = root
        self._lock = threading.Lock()
        self._session: Any = None
        self._tokenizer: Any = None
        self._inputs: tuple[str, ...] = ()
        self._pad_id = 0
        # A chat resends its history each turn: each message is judged once.
        self.memo = ModelMemo()

    def _load(self) -> None:
        with self._lock:
            if self._session is not None:
                return
            try:
                import onnxruntime as ort
                from tokenizers import Tokenizer
            except ImportError as exc:  # pragma: no cover - the extra is part of the test set-up
                raise RuntimeError("safety classifiers need the 'semantic' extra: pip install 'llmrelay[semantic]'") from exc
            tok = Tokenizer.from_file(str(self._root / "tokenizer.json"))
            pad = tok.padding
            self._pad_id = int(pad["pad_id"]) if pad else 0
            tok.no_padding()
            tok.enable_truncation(max_length=self.cfg.max_tokens, stride=self.cfg.stride)
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = self.cfg.threads
            opts.inter_op_num_threads = 1
            session = ort.InferenceSession(str(self._model), opts, providers=["CPUExecutionProvider"])
            self._inputs = tuple(i.name for i in session.get_inputs())
            self._tokenizer, self._session = tok, session

    def _windows(self, text: str) -> list[_Window]:
        """The windows read: all of them up to max_windows, else the first and last halves."""
        cfg = self.cfg
        # A huge text is never tokenised whole: only this many characters from either end, enough
        # for the windows kept unless the text's tokens average over 16 characters (WordPiece and
        # BPE tokens of prose average ~4).
        reach = cfg.max_windows * cfg.max_tokens * _CHARS_PER_TOKEN
        if len(text) > 2 * reach:
            head, tail_start = text[:reach], len(text) - reach
            first = self._tokenizer.encode(head)
            last = self._tokenizer.encode(text[tail_start:])
            half = (cfg.max_windows + 1) // 2
            tail = _all(last)
            return [*_all(first)[:half], *[_shifted(w, tail_start) for w in tail[max(0, len(tail) - (cfg.max_windows - half)):]]]
        windows = _all(self._tokenizer.encode(text))
        if len(windows) > cfg.max_windows:
            half = (cfg.max_windows + 1) // 2
            windows = windows[:half] + windows[max(half, len(windows) - (cfg.max_windows - half)):]
        return windows

    def probabilities(self, text: str) -> tuple[list[float], list[tuple[int, int]]]:
        """The violation probability of each window read, and each window's character span."""
        import numpy as np

        if self._session is None:
            self._load()
        windows = self._windows(text)
        if not windows:
            return [], []
        width = max(len(w.ids) for w in windows)
        ids = np.full((len(windows), width), self._pad_id, dtype=np.int64)
        mask = np.zeros((len(windows), width), dtype=np.int64)
        spans: list[tuple[int, int]] = []
        for i, w in enumerate(windows):
            ids[i, : len(w.ids)] = w.ids
            mask[i, : len(w.ids)] = 1
            spans.append(w.span)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        logits = np.asarray(self._session.run(None, {k: v for k, v in feeds.items() if k in self._inputs})[0], dtype=np.float64)
        if logits.ndim != 2 or logits.shape[1] != self._n_labels:
            raise RuntimeError(f"safety classifier {self.cfg.label!r}: logits of shape {logits.shape}, "
                               f"config.json names {self._n_labels} labels")
        if self._sigmoid:
            probs = 1.0 / (1.0 + np.exp(-logits))
            p = probs[:, self._positive].max(axis=1)
        else:
            e = np.exp(logits - logits.max(axis=1, keepdims=True))
            p = (e[:, self._positive].sum(axis=1)) / e.sum(axis=1)
        return [float(v) for v in p], spans

    def score(self, p: float) -> float:
        """Probability -> policy score: flag_at -> 0.5, block_at -> 0.8, piecewise linear from 0 to 1."""
        return to_policy_score(p, (self.cfg.flag_at, self.cfg.block_at), (0.5, 0.8))

    def scan(self, text: str) -> list[Finding]:
        return self.memo.judge(text, self._scan) if text.strip() else []

    def _scan(self, text: str) -> list[Finding]:
        probs, spans = self.probabilities(text)
        if not probs:
            return []
        best = max(range(len(probs)), key=probs.__getitem__)
        score = self.score(probs[best])
        if score < _REPORT_AT:
            return []
        start, end = spans[best]
        return [Finding(self.category, start, end, min(score, 1.0), self.cfg.type or _TYPES[self.category], rule=self.name)]


def classifiers_from(raw: Sequence[dict[str, Any]] | None) -> tuple[Classifier, ...]:
    """The configured classifiers, checked (files present, labels known); models load on first use."""
    return tuple(Classifier(ClassifierConfig.model_validate(item)) for item in raw or ())


def check_classifiers(raw: Sequence[dict[str, Any]]) -> None:
    """Raise ValueError naming the first bad entry of ``safety.classifiers`` (shape, files, labels)."""
    from pydantic import ValidationError

    for i, item in enumerate(raw):
        try:
            Classifier(ClassifierConfig.model_validate(item))
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'entry'}: {e['msg']}" for e in exc.errors())
            raise ValueError(f"safety.classifiers[{i}]: {problems}") from None
        except ValueError as exc:
            raise ValueError(f"safety.classifiers[{i}]: {exc}") from None
