"""The audit writer's rows: built in one loop per batch (serialised data, pseudonym, link, MAC),
they are the rows the chain's documented format gives, byte for byte. A chain written entry by
entry (the earlier writer's shape) goes on under the batch writer and verifies; SQLite's
multi-row inserts split at any size; ``flush()`` returns the entries as stored; two writers on
one database keep one chain."""

from __future__ import annotations

import datetime
import hashlib
import hmac
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest

from llmrelay.context import RequestContext
from llmrelay.layers.accounting import audit_summary
from llmrelay.safety import audit_store
from llmrelay.safety.audit import AuditLog, chainer, seal
from llmrelay.safety.audit_store import GENESIS, NewEntry, open_store

Ref = tuple[int, float, str, "str | None", str, str, str]


def reference_mac(secret: bytes, entry_id: int, ts: float, kind: str, subject: str | None, data: str, prev: str) -> str:
    """The chain's MAC as documented: HMAC-SHA256 over id, time, kind, subject, data and prev."""
    msg = "\x1f".join((str(entry_id), repr(float(ts)), kind, subject or "", data, prev)).encode()
    return hmac.new(secret, msg, hashlib.sha256).hexdigest()


def reference_rows(secret: bytes, items: Sequence[tuple[float, str, str | None, Any]], last: tuple[int, str]) -> list[Ref]:
    """Rows as the entry-by-entry writer built them: data as sorted-key JSON, then linked and sealed."""
    last_id, prev = last
    out: list[Ref] = []
    for ts, kind, subject, data in items:
        last_id += 1
        text = orjson.dumps(data, option=orjson.OPT_SORT_KEYS, default=str).decode()
        mac = reference_mac(secret, last_id, ts, kind, subject, text, prev)
        out.append((last_id, float(ts), kind, subject, text, prev, mac))
        prev = mac
    return out


def chain_ok(secret: bytes, rows: Sequence[Sequence[Any]]) -> bool:
    """An independent walk of the chain (not :class:`ChainChecker`)."""
    prev = GENESIS
    for i, r in enumerate(rows, 1):
        if r[0] != i or r[5] != prev or r[6] != reference_mac(secret, r[0], r[1], r[2], r[3], r[4], r[5]):
            return False
        prev = r[6]
    return True


def _db_rows(path: Path, table: str = "audit_log") -> list[Any]:
    db = sqlite3.connect(path)
    try:
        return db.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
    finally:
        db.close()


BATCH: list[tuple[float, str, str | None, dict[str, Any], str | None]] = [  # every shape a caller sends
    (1_700_000_000.123456, "request", "ann", {"z": 1, "a": [1, 2], "m": {"y": None, "b": True}}, None),
    (17, "admin.key_created", None, {}, "kept text"),
    (0.1, "safety", "bób", {"t": "ünïcode \u2028 \"quoted\"\n", "f": 1.5e-7}, "ünï"),
    (1_700_000_001, "request", "", {"when": datetime.datetime(2026, 1, 2, 3, 4, 5)}, None),
    (-0.0, "x" * 300, "ann", {"n": 2**62, "neg": -3}, ""),
]
NAMES = {"ann": "u_ann", "bób": "u_bob"}


def test_rows_are_the_documented_chain_byte_for_byte() -> None:
    secret, last = b"s" * 40, (41, "ab" * 32)
    rows, content = chainer(secret, BATCH, NAMES)(*last)
    items = [(ts, kind, NAMES[user] if user else None, data) for ts, kind, user, data, _ in BATCH]
    assert rows == reference_rows(secret, items, last)
    assert [type(r[1]) for r in rows] == [float] * len(BATCH)  # an int clock is stored as the float it is sealed as
    # The retained per-entry API gives the same MACs (verification uses it).
    assert [seal(secret, r[0], r[5], NewEntry(r[1], r[2], r[3], r[4])) for r in rows] == [r[6] for r in rows]
    assert content == [(43, None, 17.0, "kept text"), (44, "u_bob", 0.1, "ünï"), (46, "u_ann", -0.0, "")]


def test_an_empty_batch_makes_no_rows() -> None:
    assert chainer(b"k", [], {})(0, GENESIS) == ([], [])


async def test_a_chain_written_entry_by_entry_goes_on_and_verifies(tmp_path: Path, secret: bytes) -> None:
    path = tmp_path / "a.db"
    store = open_store(f"sqlite:///{path}")
    await store.last()  # creates the tables
    await store.aclose()
    before = reference_rows(secret, [(1000 + i, "request", None, {"i": i}) for i in range(9)], (0, GENESIS))
    db = sqlite3.connect(path)
    db.executemany("INSERT INTO audit_log VALUES (?,?,?,?,?,?,?)", before)
    db.commit()
    db.close()
    log = AuditLog(open_store(f"sqlite:///{path}"), secret, clock=iter(range(2000, 3000)).__next__, batch_size=4)
    for i in range(10):
        log.record("request", {"i": 9 + i}, user="ann" if i % 2 else None)
    await log.flush()
    result = await log.verify()
    assert (result.ok, result.checked) == (True, 19)
    rows = _db_rows(path)
    assert rows[:9] == before and chain_ok(secret, rows)
    await log.store.aclose()


@pytest.mark.parametrize("per_insert", [1, 5, 256])
async def test_multi_row_inserts_split_at_any_size(per_insert: int, tmp_path: Path, secret: bytes,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audit_store, "_ROWS_PER_INSERT", per_insert)
    log = AuditLog(open_store(f"sqlite:///{tmp_path}/a.db"), secret, clock=iter(range(1, 1000)).__next__, batch_size=16)
    for i in range(37):
        log.record("request", {"i": i}, user="ann" if i % 3 == 0 else None, content=f"c{i}" if i % 3 == 0 else None)
    written = await log.flush()
    rows = _db_rows(tmp_path / "a.db")
    assert [r[0] for r in rows] == list(range(1, 38)) and chain_ok(secret, rows)
    assert [orjson.loads(r[4])["i"] for r in rows] == list(range(37))
    assert [(e.id, e.mac) for e in written] == [(r[0], r[6]) for r in rows]
    ps = rows[0][3]
    assert _db_rows(tmp_path / "a.db", "audit_content") == [(i + 1, ps, float(i + 1), f"c{i}") for i in range(0, 37, 3)]
    await log.store.aclose()


async def test_the_parameter_limit_bounds_rows_per_insert(tmp_path: Path, secret: bytes) -> None:
    store = open_store(f"sqlite:///{tmp_path}/a.db")
    assert isinstance(store, audit_store.SQLiteAuditStore)
    db = store._connect()
    assert store._per_insert == min(256, db.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // 7)
    await store.aclose()


async def test_flush_returns_the_entries_as_stored(sqlite_log: AuditLog) -> None:
    assert await sqlite_log.flush() == []
    for i in range(5):
        sqlite_log.record("safety", {"i": i}, user="bob", content="t")
    written = await sqlite_log.flush()
    stored = await sqlite_log.entries()
    assert len(written) == 5 and written == stored and list(written) == stored
    assert written[0] == stored[0] and written[-1].id == 5 and written[1:3] == stored[1:3]
    assert written != stored[:4] and written != [1, 2, 3, 4, 5]


async def test_two_writers_on_one_database_keep_one_chain(tmp_path: Path, secret: bytes) -> None:
    url = f"sqlite:///{tmp_path}/a.db"
    logs = [AuditLog(open_store(url), secret, batch_size=3) for _ in range(2)]
    for step in range(6):
        for n, log in enumerate(logs):
            for i in range(step + 1):
                log.record("request", {"w": n, "step": step, "i": i}, user=f"user{n}")
            await log.flush()
    result = await logs[0].verify()
    total = 2 * sum(range(1, 7))
    assert (result.ok, result.checked) == (True, total)
    assert chain_ok(secret, _db_rows(tmp_path / "a.db"))
    for log in logs:
        await log.store.aclose()


class _Capture:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any], str | None]] = []

    def record(self, kind: str, data: dict[str, Any], *, user: str | None = None) -> None:
        self.calls.append((kind, data, user))


@pytest.mark.parametrize("cost", [0.0, -0.0, 1.234567891e-5, 0.1 + 0.2, 3, 5e-9])
def test_the_request_summary_rounds_cost_as_before(cost: float) -> None:
    ctx = RequestContext(key_id="k_1", user="ann", provider="up", status="ok")
    ctx.cost_usd = cost
    audit = _Capture()
    audit_summary(audit, "m", ctx)
    (kind, data, user), = audit.calls
    assert (kind, user) == ("request", "ann")
    expected = round(cost, 8)
    assert data["cost_usd"] == expected and type(data["cost_usd"]) is type(expected)
    assert orjson.dumps(data["cost_usd"]) == orjson.dumps(expected)  # -0.0 stays -0.0 on the chain
    assert data == {"request_id": ctx.request_id, "key_id": "k_1", "model": "m", "provider": "up", "status": "ok",
                    "cost_usd": expected, "safety": None}



@pytest.mark.postgres
async def test_postgres_chain_written_entry_by_entry_goes_on_and_verifies(postgres_url: str, secret: bytes) -> None:
    import asyncpg

    log = AuditLog(open_store(postgres_url), secret, clock=iter(range(2000, 3000)).__next__, batch_size=4)
    await log.store.last()  # creates the tables
    before = reference_rows(secret, [(1000.5 + i, "request", None, {"i": i}) for i in range(5)], (0, GENESIS))
    conn = await asyncpg.connect(postgres_url)
    try:
        await conn.executemany("INSERT INTO audit_log VALUES ($1,$2,$3,$4,$5,$6,$7)", before)
        for i in range(9):
            log.record("request", {"i": 5 + i}, user="ann" if i % 2 else None, content="c" if i % 2 else None)
        written = await log.flush()
        result = await log.verify()
        assert (result.ok, result.checked) == (True, 14)
        rows = [tuple(r) for r in await conn.fetch("SELECT * FROM audit_log ORDER BY id")]
        assert rows[:5] == before and chain_ok(secret, rows)
        assert [(e.id, e.mac) for e in written] == [(r[0], r[6]) for r in rows[5:]]
        content = [tuple(r) for r in await conn.fetch("SELECT entry_id, content FROM audit_content ORDER BY 1")]
        assert content == [(7, "c"), (9, "c"), (11, "c"), (13, "c")]
    finally:
        await conn.close()
        await log.store.aclose()
