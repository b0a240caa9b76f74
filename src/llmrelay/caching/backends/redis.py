"""A cache shared by every gateway instance: Redis (redis-py's asyncio client, imported lazily).

Each value is prefixed with its expiry time (8 bytes, big-endian double) so expiry follows the
injected clock like the other backends; a native ``PX`` TTL lets Redis collect it as well. Bounds
are Redis's own (``maxmemory`` with an LRU policy): counting keys per write would cost a round trip.

    backend = RedisBackend("redis://127.0.0.1:6379/0", clock=clock)
"""

from __future__ import annotations

import struct
from typing import Any

from ...clock import Clock
from .base import SEPARATOR, CacheStats

PREFIX = "llmrelay:cache:"
_EXPIRY = struct.Struct(">d")
# The digest part of a key: 32 hex characters (see llmrelay.caching.request_key).
_DIGEST_GLOB = "?" * 32


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


class RedisBackend:
    inline = False

    def __init__(self, url: str, clock: Clock, client: Any = None) -> None:
        self.url = url
        self._clock = clock
        self._client = client

    def _redis(self) -> Any:
        if self._client is None:
            try:
                import redis.asyncio as aioredis
            except ImportError as exc:  # pragma: no cover - depends on the install
                raise RuntimeError("cache.backend is redis but redis-py is missing: pip install 'llmrelay[redis]'") from exc
            self._client = aioredis.from_url(self.url)
        return self._client

    async def get(self, key: str) -> bytes | None:
        raw = await self._redis().get(PREFIX + key)
        if raw is None:
            return None
        (expires_at,) = _EXPIRY.unpack_from(raw)
        if expires_at <= self._clock.time():
            await self._redis().unlink(PREFIX + key)
            return None
        return bytes(raw[_EXPIRY.size:])

    async def set(self, key: str, group: str, value: bytes, ttl_s: float) -> None:
        expires_at = self._clock.time() + ttl_s
        await self._redis().set(PREFIX + key, _EXPIRY.pack(expires_at) + value, px=max(1, int(ttl_s * 1000)))

    async def delete(self, key: str) -> bool:
        return int(await self._redis().unlink(PREFIX + key)) > 0

    def _pattern(self, group: str | None) -> str:
        if group is None:
            return PREFIX + "*"
        return PREFIX + _glob_escape(group) + SEPARATOR + _DIGEST_GLOB

    async def clear(self, group: str | None = None) -> int:
        r = self._redis()
        removed = 0
        batch: list[bytes] = []
        async for k in r.scan_iter(match=self._pattern(group), count=500):
            batch.append(k)
            if len(batch) >= 500:
                removed += int(await r.unlink(*batch))
                batch.clear()
        if batch:
            removed += int(await r.unlink(*batch))
        return removed

    async def stats(self) -> CacheStats:
        r = self._redis()
        entries = size = 0
        async for k in r.scan_iter(match=self._pattern(None), count=500):
            entries += 1
            size += int(await r.strlen(k)) + len(k)
        return CacheStats(entries, size)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
