"""Cache backends, chosen by ``cache.backend``: ``memory`` (default), ``sqlite``, ``redis``.

    from llmrelay.caching.backends import open_backend
    backend = open_backend(settings, clock)      # a CacheBackend
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ...clock import Clock
from ...config import Settings
from .base import CacheBackend, CacheStats, entry_key, group_of
from .memory import MemoryBackend
from .sqlite import SQLiteBackend, sqlite_path

__all__ = ["CacheBackend", "CacheStats", "MemoryBackend", "SQLiteBackend", "backend_url", "entry_key",
           "group_of", "open_backend"]


def backend_url(settings: Settings) -> str:
    """Where the configured cache lives (``memory://`` for the in-process one)."""
    cfg = settings.cache
    if cfg.backend == "memory":
        return "memory://"
    if cfg.url:
        return cfg.url
    if cfg.backend == "redis":
        if not settings.redis.url:
            raise ValueError("cache.backend is redis: set cache.url or redis.url")
        return settings.redis.url
    storage = settings.storage.url
    if storage.startswith("sqlite://") and sqlite_path(storage) != ":memory:":
        return "sqlite:///" + str(Path(sqlite_path(storage)).with_name("llmrelay-cache.db"))
    return "sqlite:///llmrelay-cache.db"


def open_backend(settings: Settings, clock: Clock, on_evict: Callable[[int], None] | None = None) -> CacheBackend:
    cfg = settings.cache
    url = backend_url(settings)
    if cfg.backend == "memory":
        return MemoryBackend(cfg.max_entries, cfg.max_bytes, clock, on_evict)
    if cfg.backend == "sqlite":
        return SQLiteBackend(sqlite_path(url), cfg.max_entries, cfg.max_bytes, clock, on_evict=on_evict)
    from .redis import RedisBackend

    return RedisBackend(url, clock)
