"""What a model said about a text, remembered: the learned scorer and the classifiers are pure functions of
the text, and a chat resends its whole history with every turn. Without this, the tenth turn of a
conversation would run the model on ten user messages, nine of them already judged.

    memo = ModelMemo()
    findings = memo.judge(text, run_the_model)      # the model runs once per distinct text

Keys are a 16-byte BLAKE2b digest of the text (a 1 MB prompt is not kept twice), values the findings as
a tuple; at most ``max_entries``, least recently used out. Thread-safe: models run in worker threads.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence

from .findings import Finding


class ModelMemo:
    __slots__ = ("_entries", "_lock", "hits", "max_entries")

    def __init__(self, max_entries: int = 4096) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[bytes, tuple[Finding, ...]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0  # texts answered from memory (for tests and debugging)

    @staticmethod
    def _key(text: str) -> bytes:
        return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()

    def judge(self, text: str, run: Callable[[str], Sequence[Finding]]) -> list[Finding]:
        """What ``run`` says about ``text``: remembered, or run now and remembered. Two threads may
        both run a new text; both get the same answer (the model is pure)."""
        known = self.get(text)
        return known if known is not None else self.put(text, run(text))

    def get(self, text: str) -> list[Finding] | None:
        key = self._key(text)
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                return None
            self._entries.move_to_end(key)
            self.hits += 1
        return list(found)  # a fresh list: callers extend and merge into it

    def put(self, text: str, findings: Sequence[Finding]) -> list[Finding]:
        key = self._key(text)
        with self._lock:
            self._entries[key] = tuple(findings)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return list(findings)

    def __len__(self) -> int:
        return len(self._entries)
