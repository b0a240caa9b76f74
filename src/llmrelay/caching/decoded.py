"""Hot entries kept decoded: a hit on a popular entry decodes it and builds its replay once.

A hit used to decode the stored bytes and cut the answer into chunks on every request (~9 us). The
entry's bytes are what the backend holds, so the decoded answer and its replay chunks are kept
beside them and reused while the backend returns the same bytes for the key (compared by value: a
Redis backend returns a fresh copy each time; a changed entry never matches). Everything kept is
immutable (frozen dataclasses, tuples), so callers share it safely.

    memo = DecodedMemo()
    hot = memo.get(key, raw)              # decodes on first sight of these bytes
    hot.answer, hot.chunks(stream=True)   # the same objects on every later hit
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from ..types import Chunk
from .entry import CachedAnswer, decode, replay

# Bounds: how many entries, and how many stored bytes, are kept decoded. An entry larger than
# _MAX_ENTRY_BYTES is decoded per hit (its decode is small next to sending it).
_MAX_ENTRIES = 1024
_MAX_BYTES = 16 << 20
_MAX_ENTRY_BYTES = 256 << 10


# Where a layer leaves an answer that several callers are served unchanged (``ctx.notes``): the
# cache entry a hit was served from, or a dedup flight's answer; for an edge that renders it
# (:attr:`Rendered.rendered`).
HIT_NOTE = "cache.hit"
# Bound on what edges keep rendered per entry (a handful of keys in practice).
_MAX_RENDERED = 16


class Rendered:
    """An answer served to many callers as the same (immutable) chunks.

    ``rendered`` is for an edge: what it made from this answer that does not change from one caller
    to the next (the collected result, the encoded body's constant part), under a key of its own
    that names everything else the value depends on. Values must be immutable; see :meth:`remember`.
    An edge uses it only for a caller whose chunks are these very objects (:meth:`chunks`): a layer
    that replaced one (a redaction) gets its answer collected and encoded afresh.
    """

    __slots__ = ("rendered",)

    def __init__(self) -> None:
        self.rendered: dict[Hashable, Any] = {}

    def remember(self, key: Hashable, value: Any) -> Any:
        """Keep ``value`` under ``key`` (bounded: an unexpected variety of keys starts afresh)."""
        if len(self.rendered) >= _MAX_RENDERED:
            self.rendered.clear()
        self.rendered[key] = value
        return value

    def chunks(self, stream: bool) -> tuple[Chunk, ...]:
        raise NotImplementedError


class FlightAnswer(Rendered):
    """A dedup flight's answer: the first chunk published (a plain call's whole answer)."""

    __slots__ = ("first",)

    def __init__(self) -> None:
        super().__init__()
        self.first: Chunk | None = None

    def chunks(self, stream: bool) -> tuple[Chunk, ...]:
        return () if self.first is None else (self.first,)


class Decoded(Rendered):
    """One stored value, decoded, with its replay for each kind of caller built on first use."""

    __slots__ = ("_plain", "_streamed", "answer", "raw")

    def __init__(self, raw: bytes, answer: CachedAnswer) -> None:
        super().__init__()
        self.raw, self.answer = raw, answer
        self._plain: tuple[Chunk, ...] | None = None
        self._streamed: tuple[Chunk, ...] | None = None

    def chunks(self, stream: bool) -> tuple[Chunk, ...]:
        if stream:
            if self._streamed is None:
                self._streamed = tuple(replay(self.answer.result, True))
            return self._streamed
        if self._plain is None:
            self._plain = tuple(replay(self.answer.result, False))
        return self._plain


class DecodedMemo:
    """Key -> the decoded form of the bytes last seen for it; oldest first out, bounded."""

    def __init__(self, max_entries: int = _MAX_ENTRIES, max_bytes: int = _MAX_BYTES) -> None:
        self.max_entries, self.max_bytes = max_entries, max_bytes
        self._held: dict[str, Decoded] = {}
        self._bytes = 0

    def get(self, key: str, raw: bytes) -> Decoded:
        held = self._held.get(key)
        if held is not None and (held.raw is raw or held.raw == raw):
            return held
        fresh = Decoded(raw, decode(raw))
        if len(raw) <= _MAX_ENTRY_BYTES:
            self._keep(key, fresh, held)
        return fresh

    def _keep(self, key: str, fresh: Decoded, old: Decoded | None) -> None:
        if old is not None:
            del self._held[key]
            self._bytes -= len(old.raw)
        while self._held and (len(self._held) >= self.max_entries or self._bytes + len(fresh.raw) > self.max_bytes):
            _, out = self._pop_oldest()
            self._bytes -= len(out.raw)
        self._held[key] = fresh
        self._bytes += len(fresh.raw)

    def _pop_oldest(self) -> tuple[str, Decoded]:
        key = next(iter(self._held))
        return key, self._held.pop(key)

    def clear(self) -> None:
        self._held.clear()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._held)
