"""The cache store protocol: bytes in, bytes out, with a TTL and a model group for invalidation.

A backend is one small class; :func:`llmrelay.caching.backends.open_backend` picks it from the
config. Keys are ``"{model group}|{32 hex digits}"`` (see :func:`entry_key`), so clearing a model
group never touches another group whose name merely starts the same way.

    class DictBackend:                     # a minimal backend, e.g. for a test
        inline = True
        def __init__(self): self.d = {}
        async def get(self, key): return self.d.get(key)
        async def set(self, key, group, value, ttl_s): self.d[key] = value
        async def delete(self, key): return self.d.pop(key, None) is not None
        async def clear(self, group=None): n = len(self.d); self.d.clear(); return n
        async def stats(self): return CacheStats(len(self.d), sum(map(len, self.d.values())))
        async def aclose(self): pass

Expiry is judged against the injected clock by every backend (Redis also gets a native TTL so
expired entries are collected), so TTL tests run on a ManualClock without waiting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

SEPARATOR = "|"


def entry_key(group: str, digest: str) -> str:
    return f"{group}{SEPARATOR}{digest}"


def group_of(key: str) -> str:
    return key.rpartition(SEPARATOR)[0]


@dataclass(frozen=True, slots=True)
class CacheStats:
    entries: int
    bytes: int
    evictions: int = 0


class CacheBackend(Protocol):
    # True when get/set are cheap enough to await on the request path (in-process memory); others
    # are written from a background task so the end of a stream is not held up by the store.
    inline: bool

    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, group: str, value: bytes, ttl_s: float) -> None: ...

    async def delete(self, key: str) -> bool: ...

    async def clear(self, group: str | None = None) -> int:
        """Remove every entry (of one model group); return how many were removed."""
        ...

    async def stats(self) -> CacheStats: ...

    async def aclose(self) -> None: ...
