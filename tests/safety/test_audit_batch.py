"""The audit writer's batch path: entries sealed with one keyed HMAC per batch, inserted with one
statement per table, pseudonyms resolved once per distinct user, and a chain written over many
batches (several users, content on some entries) that verifies and survives a shutdown."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path
from typing import Any

import pytest

from llmrelay.safety.audit import AuditLog, seal, sealer
from llmrelay.safety.audit_store import NewEntry, open_store


def reference_mac(secret: bytes, entry_id: int, prev: str, e: NewEntry) -> str:
    """The chain's MAC as documented: HMAC-SHA256 over id, time, kind, subject, data and prev."""
    msg = "\x1f".join((str(entry_id), repr(float(e.ts)), e.kind, e.subject or "", e.data, prev)).encode()
    return hmac.new(secret, msg, hashlib.sha256).hexdigest()


@pytest.mark.parametrize("entry", [
    NewEntry(1_700_000_000.123456, "request", "u_0123", '{"a":1}', "kept text"),
    NewEntry(17, "admin.key_created", None, "{}"),
    NewEntry(0.1, "safety", "u_é", '{"t":"ünïcode"}'),
])
def test_the_batch_sealer_gives_the_documented_mac(entry: NewEntry) -> None:
    secret, prev = b"s" * 32, "ab" * 32
    batch = sealer(secret)
    expected = reference_mac(secret, 42, prev, entry)
    assert seal(secret, 42, prev, entry) == expected
    # Twice from one sealer: the keyed state is copied, never consumed.
    assert batch(42, prev, entry) == expected == batch(42, prev, entry)
    assert batch(43, prev, entry) != expected


@pytest.mark.parametrize("length", [0, 1, 31, 63, 64, 65, 128, 200])
def test_the_batch_sealer_matches_hmac_for_any_secret_length(length: int) -> None:
    # HMAC pads a key up to SHA-256's 64-byte block and hashes a longer one first: both cases,
    # and the boundary, must give the standard MAC (a configured audit_secret can be any length).
    secret = bytes((i * 37 + length) % 256 for i in range(length))
    entry = NewEntry(1_700_000_000.5, "request", None, '{"status":"cached"}')
    assert sealer(secret)(7, "cd" * 32, entry) == reference_mac(secret, 7, "cd" * 32, entry)


async def test_many_batches_many_users_verify_and_drain_on_shutdown(tmp_path: Path, secret: bytes) -> None:
    store = open_store(f"sqlite:///{tmp_path}/a.db")
    lookups: list[str] = []
    subject = store.subject

    async def counted(user: str) -> Any:
        lookups.append(user)
        return await subject(user)

    store.subject = counted  # type: ignore[method-assign]
    log = AuditLog(store, secret, batch_size=16, flush_s=0.01)
    await log.start()
    users = ["ann", "bob", None, "cy"]
    for i in range(100):
        log.record("request", {"i": i, "status": "ok"}, user=users[i % 4], content=f"text {i}" if i % 3 == 0 else None)
    await log.aclose()  # the writer stops; whatever is still queued is written
    assert sorted(set(lookups)) == ["ann", "bob", "cy"] and len(lookups) == 3

    again = AuditLog(open_store(f"sqlite:///{tmp_path}/a.db"), secret)
    result = await again.verify()
    assert (result.ok, result.checked) == (True, 100)
    entries = await again.entries()
    assert [e.id for e in entries] == list(range(1, 101))
    ann = (await again.export_user("ann"))["entries"]
    assert [e["data"]["i"] for e in ann] == list(range(0, 100, 4))
    assert [e.get("content") for e in ann] == [f"text {i}" if i % 3 == 0 else None for i in range(0, 100, 4)]
    await again.store.aclose()
