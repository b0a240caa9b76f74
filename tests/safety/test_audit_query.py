"""recent_entries: the newest entries of some kinds, found behind many request summaries."""

from __future__ import annotations

from pathlib import Path

from llmrelay.safety.audit import AuditLog
from llmrelay.safety.audit_query import matches, recent_entries
from llmrelay.safety.audit_store import open_store


async def test_finds_rare_kinds_behind_many_summaries(tmp_path: Path) -> None:
    log = AuditLog(open_store(f"sqlite:///{tmp_path / 'a.db'}"), b"k" * 32)
    log.record("safety", {"n": 1})
    log.record("admin.key_created", {"n": 2})
    for i in range(1200):
        log.record("request", {"i": i})
    log.record("safety.output", {"n": 3})
    await log.flush()
    try:
        found = await recent_entries(log.store, 10, ("safety", "admin"))
        assert [e.data for e in found] == ['{"n":3}', '{"n":2}', '{"n":1}']
        assert [e.id for e in found] == [1203, 2, 1]
        newest = await recent_entries(log.store, 3)
        assert [e.id for e in newest] == [1203, 1202, 1201]
        assert [e.id for e in await recent_entries(log.store, 2, before=3)] == [2, 1]
        # The walk is bounded: with a small budget the oldest events are not reached.
        assert [e.id for e in await recent_entries(log.store, 10, ("safety",), max_scanned=600)] == [1203]
    finally:
        await log.aclose()


def test_kind_matching() -> None:
    assert matches("admin.key_created", ("admin",)) and matches("admin", ("admin",))
    assert not matches("administrator", ("admin",)) and matches("anything", None)
