"""The schema check a gateway runs when it starts.

* The database is newer than this release: refuse to start, saying so.
* Migrations are pending: apply them on SQLite always, on PostgreSQL when ``storage.auto_migrate``
  (the default); otherwise refuse to start and ask for ``llmrelay db upgrade``.

It runs first among the start-up hooks (before the ledger and audit writers open their stores),
once per process and storage URL.

    add_schema_check(services)      # from llmrelay.shared_state.wire
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from ..errors import ConfigError
from .migrate import _safe, schema_status, too_new, upgrade

log = logging.getLogger("llmrelay.stores")


async def ensure_schema(url: str, auto_migrate: bool) -> list[int]:
    """Check (and if allowed, upgrade) the schema at ``url``; return the versions applied."""
    status = await schema_status(url)
    if status.too_new:
        raise too_new(url, status.current)
    if not status.pending:
        return []
    if status.dialect == "postgres" and not auto_migrate:
        raise ConfigError(
            f"the database at {_safe(url)} is at schema version {status.current}, this llmrelay needs "
            f"{status.latest}; run `llmrelay db upgrade` (storage.auto_migrate is off)"
        )
    applied = await upgrade(url)
    if applied:
        log.info("database schema at %s upgraded: applied migrations %s", _safe(url), applied)
    return applied


def add_schema_check(services: Any) -> None:
    storage = services.settings.storage
    services.on_start.insert(0, _check(services.state, storage.url, storage.auto_migrate))


def _check(state: dict[Any, Any], url: str, auto_migrate: bool) -> Callable[[], Awaitable[None]]:
    async def check() -> None:
        if state.get(("stores.schema_ok", url)):
            return
        await ensure_schema(url, auto_migrate)
        state[("stores.schema_ok", url)] = True

    return check
