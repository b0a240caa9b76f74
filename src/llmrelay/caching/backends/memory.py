"""The default backend: an in-process LRU bounded by entry count and by bytes.

    >>> import asyncio
    >>> from llmrelay.clock import ManualClock
    >>> m = MemoryBackend(max_entries=2, max_bytes=1 << 20, clock=ManualClock())
    >>> asyncio.run(m.set("g|a", "g", b"x", 60.0)); asyncio.run(m.get("g|a"))
    b'x'
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from ...clock import Clock
from .base import CacheStats

# Bookkeeping per entry beyond its value (key string, tuple, dict slot): counted against max_bytes
# so a flood of tiny answers cannot exceed the budget through overhead alone.
ENTRY_OVERHEAD = 200


class MemoryBackend:
    inline = True

    def __init__(self, max_entries: int, max_bytes: int, clock: Clock,
                 on_evict: Callable[[int], None] | None = None) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._clock = clock
        self._on_evict = on_evict
        # key -> (expires_at, group, value); most recently used last.
        self._data: OrderedDict[str, tuple[float, str, bytes]] = OrderedDict()
        self._bytes = 0
        self.evictions = 0

    @staticmethod
    def _size(key: str, value: bytes) -> int:
        return len(key) + len(value) + ENTRY_OVERHEAD

    async def get(self, key: str) -> bytes | None:
        item = self._data.get(key)
        if item is None:
            return None
        if item[0] <= self._clock.time():
            self._remove(key)
            return None
        self._data.move_to_end(key)
        return item[2]

    async def set(self, key: str, group: str, value: bytes, ttl_s: float) -> None:
        size = self._size(key, value)
        if size > self.max_bytes:
            return  # larger than the whole cache: storing it would only evict everything else
        if key in self._data:
            self._remove(key)
        self._data[key] = (self._clock.time() + ttl_s, group, value)
        self._bytes += size
        evicted = 0
        while len(self._data) > self.max_entries or self._bytes > self.max_bytes:
            self._remove(next(iter(self._data)))
            evicted += 1
        if evicted:
            self.evictions += evicted
            if self._on_evict is not None:
                self._on_evict(evicted)

    def _remove(self, key: str) -> None:
        _, _, value = self._data.pop(key)
        self._bytes -= self._size(key, value)

    async def delete(self, key: str) -> bool:
        if key not in self._data:
            return False
        self._remove(key)
        return True

    async def clear(self, group: str | None = None) -> int:
        if group is None:
            n = len(self._data)
            self._data.clear()
            self._bytes = 0
            return n
        doomed = [k for k, (_, g, _) in self._data.items() if g == group]
        for k in doomed:
            self._remove(k)
        return len(doomed)

    async def stats(self) -> CacheStats:
        return CacheStats(len(self._data), self._bytes, self.evictions)

    @property
    def bytes(self) -> int:
        return self._bytes

    async def aclose(self) -> None:
        return None
