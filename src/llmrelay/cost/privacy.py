"""The usage ledger's GDPR hooks: every row about a user (access) and unlinking them (erasure).

Registered with the privacy registry (``services.privacy``, :mod:`llmrelay.safety.privacy`) by
:func:`register_ledger_privacy`, so ``llmrelay privacy export/erase`` and ``/admin/privacy/...``
cover the ledger:

    register_ledger_privacy(services)
    await services.privacy.export("alice")   # {"ledger": {"rows": [...]}, ...}
    await services.privacy.erase("alice")    # {"ledger": {"unlinked_rows": 3, ...}, ...}

Erasure keeps the money and drops the person: the user's rows (raw, daily and monthly roll-ups) get one
random label ``erased-<hex>`` that nothing maps back to, and their session ids are cleared. Totals,
budgets, forecasts and the audit of what was spent stay right; nothing left names the user. A
random label (rather than a shared "anonymous" one) never collides with a roll-up's primary key,
so erasure is one UPDATE per table on either backend.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Sequence
from typing import Any

from . import ledger_sql as q
from .ledger import LedgerWriter

# Bounded so an export of a heavy user stays one answer; the count says when rows were left out.
EXPORT_LIMIT = 100_000
_USER_ROWS = f"SELECT {', '.join(q.ROW_COLUMNS)} FROM usage_ledger WHERE user_id = ? ORDER BY ts LIMIT {EXPORT_LIMIT}"
_COUNT_USER = "SELECT COUNT(*) AS n FROM usage_ledger WHERE user_id = ?"
_ERASE_ROWS = "UPDATE usage_ledger SET user_id = ?, session = NULL WHERE user_id = ?"


def _user_rollups() -> list[str]:
    """The roll-up tables (daily and monthly) that keep a user column (their names come from the
    fixed schema)."""
    return [table for table, dims in q.ALL_ROLLUPS.items() if "user_id" in dims]


async def _fetch(store: Any, sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
    # Both SQL backends answer "?" SQL through _fetch (as the dashboard's queries do).
    rows: list[dict[str, Any]] = await store._fetch(sql, list(params))
    return rows


async def _execute(store: Any, statements: Sequence[tuple[str, Sequence[Any]]]) -> int:
    """Run UPDATEs in one transaction; returns the first statement's row count."""
    from .ledger_postgres import PostgresLedger, numbered
    from .ledger_sqlite import SQLiteLedger

    if isinstance(store, SQLiteLedger):
        def run(conn: Any) -> int:
            with conn:
                conn.execute("BEGIN")
                counts = [conn.execute(sql, tuple(p)).rowcount for sql, p in statements]
            return int(counts[0])

        result: int = await store._call(run)
        return result
    if isinstance(store, PostgresLedger):
        await store.open()
        async with store._pool.acquire() as conn, conn.transaction():
            counts = [await conn.execute(numbered(sql), *p) for sql, p in statements]
        return int(str(counts[0]).rsplit(" ", 1)[-1])
    raise RuntimeError(f"the ledger backend {type(store).__name__} has no erasure support")


class LedgerPrivacy:
    """Export and erase hooks over a running ledger writer (queued rows are written first)."""

    def __init__(self, writer: LedgerWriter, flush_timeout_s: float = 10.0) -> None:
        self.writer = writer
        self.flush_timeout_s = flush_timeout_s

    async def _flush(self) -> None:
        # Queued rows about the user must be written before they are read or erased. Shielded: a
        # timeout must not cancel a batch mid-write (the writer would lose it).
        try:
            await asyncio.wait_for(asyncio.shield(self.writer.flush()), self.flush_timeout_s)
        except TimeoutError:
            raise RuntimeError(f"the usage ledger cannot be written ({self.writer.depth} rows queued); "
                               "retry once the database at storage.url is reachable") from None

    async def export_user(self, user: str) -> dict[str, Any]:
        await self._flush()
        store = self.writer.store
        rows = await _fetch(store, _USER_ROWS, [user])
        total = int((await _fetch(store, _COUNT_USER, [user]))[0]["n"])
        return {"rows": rows, "total_rows": total, "truncated": total > len(rows)}

    async def erase_user(self, user: str) -> dict[str, Any]:
        await self._flush()
        label = "erased-" + secrets.token_hex(8)
        statements: list[tuple[str, Sequence[Any]]] = [(_ERASE_ROWS, [label, user])]
        statements += [(f"UPDATE {t} SET user_id = ? WHERE user_id = ?", [label, user]) for t in _user_rollups()]
        n = await _execute(self.writer.store, statements)
        # The label is not returned: whoever asked knows the user, and must not get the link back.
        return {"unlinked_rows": n}


def register_ledger_privacy(services: Any) -> None:
    """Add the ledger's hooks to ``services.privacy`` (when both exist)."""
    if services.privacy is None or services.ledger is None:
        return
    hooks = LedgerPrivacy(services.ledger)
    services.privacy.register("ledger", export=hooks.export_user, erase=hooks.erase_user)
