"""Invalidation for the edges: what ``DELETE /admin/cache`` and ``llmrelay cache clear`` call.

    await clear_cache(relay.services)                      # everything
    await clear_cache(relay.services, model="fast")        # one model group
    await clear_cache(relay.services, key="fast|9f0c...")  # one entry (the key in ctx.notes["cache.key"])
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..clock import SystemClock
from ..config import Settings
from ..services import Services
from .backends import backend_url, open_backend
from .service import response_cache


async def clear_cache(services: Services, model: str | None = None, key: str | None = None) -> dict[str, Any]:
    """Clear the running gateway's cache; the answer is ``{"cleared": N, "model": ..., "key": ...}``."""
    cleared = await response_cache(services).clear(group=model, key=key)
    return {"cleared": cleared, "model": model, "key": key}


async def clear_cache_query(services: Services, query: Mapping[str, str]) -> dict[str, Any]:
    """``DELETE /admin/cache?model=M`` or ``?key=K`` (no parameter: everything)."""
    return await clear_cache(services, model=query.get("model") or None, key=query.get("key") or None)


async def clear_stored(settings: Settings, model: str | None = None, key: str | None = None) -> int:
    """Clear a persistent cache (SQLite, Redis) from outside the gateway, e.g. the CLI."""
    if settings.cache.backend == "memory":
        raise ValueError("the memory cache lives inside the gateway process: use DELETE /admin/cache")
    backend = open_backend(settings, SystemClock())
    try:
        return int(await backend.delete(key)) if key is not None else await backend.clear(model)
    finally:
        await backend.aclose()


async def stored_stats(settings: Settings) -> dict[str, Any]:
    backend = open_backend(settings, SystemClock())
    try:
        s = await backend.stats()
    finally:
        await backend.aclose()
    return {"backend": settings.cache.backend, "url": backend_url(settings), "entries": s.entries, "bytes": s.bytes}
