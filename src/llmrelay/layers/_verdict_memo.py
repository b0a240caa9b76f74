"""A bounded memo of what the deterministic safety detectors found in a text, for the safety layer.

The same prompt and the same cached answer come back again and again (a cache hit, a retried
request, a shared system of tools): the built-in detectors and a policy's custom rules give the
same findings for the same (policy, direction, text), so the scan is done once and its findings
remembered. Only the scan is saved: the decision (thresholds, actions, redaction with the request's
own placeholders) and everything recorded about it (metrics, audit, ``ctx.safety_findings``) are
still made per request from those findings.

    >>> memo = VerdictMemo(max_entries=2)
    >>> engine = MemoisedEngine(SafetyEngine(), memo)
    >>> policy = policy_for_level("moderate")
    >>> a = engine.scan("mail bob@example.com", policy, "input", learned=False)
    >>> b = engine.scan("mail bob@example.com", policy, "input", learned=False)  # from the memo
    >>> a == b, memo.hits
    (True, 1)

What is never memoised: the learned scorer and external moderation (a model's or a service's
answer may change; the layer runs them per request, after the memoised scan), and texts longer
than ``max_text`` (one huge text would evict everything else for a single reuse).

Entries are keyed by the policy object's identity and hold the policy itself, checked on every hit:
a reload builds new policy objects, so an old verdict is never served under a new policy (and an
address reused by a new object does not match the old one). The text itself is part of the key, so
two different texts never share an entry, whatever their hashes.
"""

from __future__ import annotations

import sys
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from ..safety.engine import SafetyEngine
from ..safety.findings import Direction, Finding
from ..safety.policy import Policy, policy_for_level

if TYPE_CHECKING:
    from ..safety.learned import LearnedScorer

__all__ = ["MemoisedEngine", "VerdictMemo", "policy_for_level"]

_Key = tuple[int, str, str]
# Per-entry overhead beyond the text: the key tuple, the entry tuple and the OrderedDict link.
_ENTRY_OVERHEAD = 200


class VerdictMemo:
    """Least-recently-used (policy, direction, text) -> findings, bounded in entries and in bytes."""

    __slots__ = ("_bytes", "_entries", "hits", "max_bytes", "max_entries", "max_text", "misses")

    def __init__(self, max_entries: int = 4096, max_bytes: int = 8 << 20, max_text: int = 32 << 10) -> None:
        self._entries: OrderedDict[_Key, tuple[Policy, tuple[Finding, ...], int]] = OrderedDict()
        self._bytes = 0
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.max_text = max_text
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes(self) -> int:
        return self._bytes

    def get(self, policy: Policy, direction: str, text: str) -> tuple[Finding, ...] | None:
        key = (id(policy), direction, text)
        entry = self._entries.get(key)
        if entry is None or entry[0] is not policy:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return entry[1]

    def put(self, policy: Policy, direction: str, text: str, findings: tuple[Finding, ...]) -> None:
        if len(text) > self.max_text:
            return
        key = (id(policy), direction, text)
        size = sys.getsizeof(text) + _ENTRY_OVERHEAD + len(findings) * 120
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= old[2]
        self._entries[key] = (policy, findings, size)
        self._bytes += size
        while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
            _, (_, _, dropped) = self._entries.popitem(last=False)
            self._bytes -= dropped

    def clear(self) -> None:
        self._entries.clear()
        self._bytes = 0


class MemoisedEngine(SafetyEngine):
    """``engine`` with its deterministic scan remembered in ``memo``; everything else is the engine's.

    It shares the wrapped engine's detectors and caches (attributes are read from it), so it can go
    wherever an engine goes (the stream filter takes one). A scan that would run the learned scorer
    (``learned=True`` on input with a scorer loaded) is not memoised.
    """

    def __init__(self, engine: SafetyEngine, memo: VerdictMemo) -> None:  # no super().__init__: nothing is rebuilt
        self._engine = engine
        self._memo = memo

    # Read on every prompt (wants_learned): a property, not a __getattr__ round trip, and always the
    # wrapped engine's current scorer (it may be swapped after the wrapper is built).
    @property  # type: ignore[override]
    def learned(self) -> LearnedScorer | None:
        return self._engine.learned

    @learned.setter
    def learned(self, scorer: LearnedScorer | None) -> None:
        self._engine.learned = scorer

    def __getattr__(self, name: str) -> Any:
        # Only reached for what this wrapper does not define: the wrapped engine's state.
        return getattr(self.__dict__["_engine"], name)

    def scan(self, text: str, policy: Policy, direction: Direction = "input", *, learned: bool = True) -> list[Finding]:
        engine = self._engine
        if learned and direction == "input" and (engine.learned is not None or engine.classifiers):
            return engine.scan(text, policy, direction, learned=True)
        if not policy.enabled or not text:
            return []
        hit = self._memo.get(policy, direction, text)
        if hit is not None:
            return list(hit)  # a fresh list: callers extend it (moderation) and merge into it (learned)
        found = engine.scan(text, policy, direction, learned=False)
        self._memo.put(policy, direction, text, tuple(found))
        return found
