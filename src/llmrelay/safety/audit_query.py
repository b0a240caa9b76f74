"""Reading the newest audit entries of some kinds, walking back from the chain head in pages.

The chain holds a summary of every request, so the few safety, config or admin entries a person
wants to see can lie far behind the head; reading a fixed last page would miss them.

    entries = await recent_entries(log.store, 30, kinds=("safety", "admin"))   # newest first
"""

from __future__ import annotations

from collections.abc import Sequence

from .audit_store import AuditEntry, AuditStore

# Entries read per step, and at most per call (bounded work however rare the kind).
STEP = 500
MAX_SCANNED = 100_000


def matches(kind: str, kinds: Sequence[str] | None) -> bool:
    """Whether ``kind`` is one of ``kinds`` or a sub-kind of one (``admin`` matches ``admin.key_created``)."""
    return kinds is None or any(kind == k or kind.startswith(k + ".") for k in kinds)


async def recent_entries(store: AuditStore, limit: int, kinds: Sequence[str] | None = None,
                         before: int | None = None, max_scanned: int = MAX_SCANNED) -> list[AuditEntry]:
    """Up to ``limit`` entries of ``kinds`` with ids below ``before`` (default: all), newest first."""
    last = await store.last()
    hi = (last.id + 1 if last else 1) if before is None else before
    out: list[AuditEntry] = []
    scanned = 0
    while hi > 1 and len(out) < limit and scanned < max_scanned:
        lo = max(0, hi - 1 - STEP)
        page = [e for e in await store.page(lo, hi - 1 - lo) if e.id < hi]
        scanned += len(page)
        out += [e for e in reversed(page) if matches(e.kind, kinds)]
        hi = lo + 1
    return out[:limit]
