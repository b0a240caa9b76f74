"""The tamper-evident audit log: safety decisions, admin actions and request summaries, appended
to an HMAC hash chain.

Each entry's ``mac`` is HMAC-SHA256, keyed with the audit secret, over its id, time, kind,
subject, data and the previous entry's mac. Editing, deleting, inserting or reordering entries
breaks the chain at the first entry touched, and :func:`verify_chain` names it. Users appear only
as keyed pseudonyms (HMAC of a per-user salt and the user id), so erasing a user deletes the salt
and their stored content while every chain link stays intact.

    log = AuditLog.from_settings(settings)
    log.record("admin.key_created", {"key_id": "k_1"}, user="alice")   # never blocks; batched
    await log.flush()
    result = await log.verify()          # VerifyResult(ok=True, checked=1, ...)

``record`` only queues the entry; a background writer seals and stores batches, so the request
path never waits on the database. The chain head (``head()``) can be exported and kept elsewhere:
an external copy is what detects the deletion of the newest entries.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from .audit_store import (
    GENESIS,
    AuditEntry,
    AuditStore,
    Chainer,
    ContentRow,
    Entries,
    NewEntry,
    Row,
    open_store,
    sqlite_path,
)

_PAGE = 5000

# A queued entry: (ts, kind, user, data, content). A plain tuple, because record() runs on every
# request and a tuple is the cheapest thing to build; the writer turns it into chain rows.
_Pending = tuple[float, str, "str | None", Mapping[str, Any], "str | None"]


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    checked: int
    first_bad_id: int | None = None
    reason: str | None = None
    head: str | None = None
    head_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "checked": self.checked, "first_bad_id": self.first_bad_id, "reason": self.reason,
                "head": self.head, "head_id": self.head_id}


def _message(entry_id: int, prev: str, e: NewEntry) -> bytes:
    # The chain's format. ``chainer`` builds the same bytes inline (tested byte for byte).
    return f"{entry_id}\x1f{float(e.ts)!r}\x1f{e.kind}\x1f{e.subject or ''}\x1f{e.data}\x1f{prev}".encode()


def seal(secret: bytes, entry_id: int, prev: str, e: NewEntry) -> str:
    return hmac.new(secret, _message(entry_id, prev, e), hashlib.sha256).hexdigest()


_BLOCK = 64  # SHA-256's block size, which HMAC pads the key to (RFC 2104)
_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))


def _keyed(secret: bytes) -> tuple[Any, Any]:
    """HMAC's keyed inner and outer SHA-256 states (RFC 2104), to be copied per message."""
    key = hashlib.sha256(secret).digest() if len(secret) > _BLOCK else secret
    key = key.ljust(_BLOCK, b"\0")
    return hashlib.sha256(key.translate(_IPAD)), hashlib.sha256(key.translate(_OPAD))


def sealer(secret: bytes) -> Callable[[int, str, NewEntry], str]:
    """:func:`seal` for many entries. The keyed inner and outer SHA-256 states of HMAC are
    computed once and copied per entry: the same MAC as ``hmac.new(secret, msg, sha256)``,
    without the ``hmac`` module's Python-level object per entry (~2.0 instead of ~3.4 us)."""
    inner, outer = _keyed(secret)

    def seal_one(entry_id: int, prev: str, e: NewEntry) -> str:
        h = inner.copy()
        h.update(_message(entry_id, prev, e))
        o = outer.copy()
        o.update(h.digest())
        return o.hexdigest()

    return seal_one


def chainer(secret: bytes, batch: Sequence[_Pending], names: Mapping[str, str]) -> Chainer:
    """The store's :data:`Chainer` for a queued batch: each entry's data serialised (sorted
    keys), its user replaced by the pseudonym in ``names``, linked to the one before and sealed
    as :func:`seal` does. One loop with no Python call per entry but builtins: every request's
    summary goes through it (~2.3 instead of ~4.6 us per entry through NewEntry, ``seal`` and
    AuditEntry)."""
    inner, outer = _keyed(secret)
    dumps, opts = orjson.dumps, orjson.OPT_SORT_KEYS

    def make_rows(last_id: int, prev: str) -> tuple[list[Row], list[ContentRow]]:
        rows: list[Row] = []
        content_rows: list[ContentRow] = []
        for ts, kind, user, data, content in batch:
            last_id += 1
            ts = float(ts)  # a clock may give an int; the MAC covers the float's repr
            subject = names[user] if user else None
            text = dumps(data, option=opts, default=str).decode()
            h = inner.copy()
            h.update(f"{last_id}\x1f{ts!r}\x1f{kind}\x1f{subject or ''}\x1f{text}\x1f{prev}".encode())
            o = outer.copy()
            o.update(h.digest())
            mac = o.hexdigest()
            rows.append((last_id, ts, kind, subject, text, prev, mac))
            if content is not None:
                content_rows.append((last_id, subject, ts, content))
            prev = mac
        return rows, content_rows

    return make_rows


class ChainChecker:
    """Checks entries one at a time, in id order; the first failure is kept."""

    def __init__(self, secret: bytes) -> None:
        self.secret = secret
        self.prev = GENESIS
        self.expected_id = 1
        self.checked = 0
        self.bad: tuple[int, str] | None = None

    def check(self, e: AuditEntry) -> bool:
        if self.bad is not None:
            return False
        if e.id != self.expected_id:
            why = (f"entries {self.expected_id}..{e.id - 1} are missing (deleted)" if e.id > self.expected_id
                   else f"id out of sequence (expected {self.expected_id}): inserted or reordered")
            self.bad = (e.id, why)
        elif e.prev != self.prev:
            self.bad = (e.id, "does not link to the previous entry (inserted, deleted or reordered entries)")
        elif not hmac.compare_digest(seal(self.secret, e.id, e.prev, NewEntry(e.ts, e.kind, e.subject, e.data)), e.mac):
            self.bad = (e.id, "its content does not match its MAC (edited)")
        if self.bad is not None:
            return False
        self.prev, self.expected_id = e.mac, e.id + 1
        self.checked += 1
        return True


async def verify_chain(store: AuditStore, secret: bytes, expected_head: str | None = None) -> VerifyResult:
    """Walk the whole chain; ``expected_head`` (an exported head mac) also catches truncation."""
    checker = ChainChecker(secret)
    after = 0
    last: AuditEntry | None = None
    seen_head = not expected_head or expected_head == GENESIS
    while True:
        page = await store.page(after, _PAGE)
        for e in page:
            if not checker.check(e):
                assert checker.bad is not None
                return VerifyResult(False, checker.checked, checker.bad[0], checker.bad[1])
            seen_head = seen_head or e.mac == expected_head
            last = e
        if len(page) < _PAGE:
            break
        after = page[-1].id
    head = last.mac if last else GENESIS
    if not seen_head:
        # An exported head must still be in the chain: newer entries may follow it, none may vanish.
        return VerifyResult(False, checker.checked, (last.id + 1) if last else 1,
                            "the exported head is no longer in the chain (newest entries deleted)", head, last.id if last else 0)
    return VerifyResult(True, checker.checked, head=head, head_id=last.id if last else 0)


def load_secret(configured: str | None, storage_url: str) -> bytes:
    """The configured secret, else one generated once and kept beside the database (mode 0600)."""
    if configured:
        return configured.encode()
    path = sqlite_path(storage_url)
    if path == ":memory:":
        return secrets.token_bytes(32)
    key_file = Path(f"{path}.audit-key") if path else Path("llmrelay.audit-key")
    if key_file.exists():
        return key_file.read_bytes().strip()
    key_file.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_hex(32).encode()
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(value)
    return value


class AuditLog:
    """The audit log service at ``services.audit``: ``record`` never blocks the caller."""

    def __init__(
        self, store: AuditStore, secret: bytes | Callable[[], bytes], *, clock: Callable[[], float] = time.time,
        batch_size: int = 256, flush_s: float = 0.5,
    ) -> None:
        self.store = store
        self._secret = secret
        self.clock = clock
        self.batch_size = batch_size
        self.flush_s = flush_s
        self._queue: list[_Pending] = []
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._pseudonyms: dict[str, str] = {}
        self._write_lock = asyncio.Lock()
        self._closing = False
        self.dropped = 0

    @classmethod
    def from_settings(cls, settings: Any, *, clock: Callable[[], float] = time.time) -> AuditLog:
        url = settings.storage.url
        secret = settings.safety.audit_secret
        return cls(open_store(url), lambda: load_secret(secret, url), clock=clock,
                   flush_s=settings.storage.ledger_flush_s)

    @property
    def secret(self) -> bytes:
        # Resolved on first use, so building a gateway never writes a key file by itself.
        if callable(self._secret):
            self._secret = self._secret()
        return self._secret

    # ---- writing ---------------------------------------------------------------------------------
    def record(self, kind: str, data: Mapping[str, Any], *, user: str | None = None, content: str | None = None) -> None:
        """Queue an entry. ``content`` (already redacted) is stored outside the chain, deletable."""
        self._queue.append((self.clock(), kind, user, data, content))
        if self._wake is not None and len(self._queue) >= self.batch_size:
            self._wake.set()

    async def start(self) -> None:
        if self._task is None:
            self._wake = asyncio.Event()
            self._task = asyncio.create_task(self._run(), name="llmrelay-audit-writer")

    async def _run(self) -> None:
        assert self._wake is not None
        while not self._closing:
            try:
                await asyncio.wait_for(self._wake.wait(), self.flush_s)
            except TimeoutError:
                pass
            self._wake.clear()
            if self._closing:
                return
            try:
                await self._write(keep=False)
            except Exception:  # keep the writer alive; entries stay queued for the next try
                await asyncio.sleep(self.flush_s)

    async def flush(self) -> Sequence[AuditEntry]:
        """Write everything queued so far; returns the sealed entries (built when read)."""
        return Entries(await self._write(keep=True))

    async def _write(self, keep: bool) -> list[Row]:
        # The background writer keeps no rows: holding every batch's rows until the queue is empty
        # made them outlive a young-generation GC pass and grew the older generations' work.
        async with self._write_lock:
            written: list[Row] = []
            while self._queue:
                batch, self._queue = self._queue[: self.batch_size], self._queue[self.batch_size :]
                try:
                    rows = await self.store.append(chainer(self.secret, batch, await self._names(batch)))
                except BaseException:
                    self._queue[:0] = batch
                    raise
                if keep:
                    written += rows
            return written

    async def _names(self, batch: list[_Pending]) -> dict[str, str]:
        """The batch's users and their pseudonyms: each distinct user looked up once per batch
        (most come from memory), in a dict of its own for the writer's thread to read."""
        names: dict[str, str] = {}
        for user in {p[2] for p in batch if p[2]}:
            names[user] = self._pseudonyms.get(user) or await self._pseudonym(user)
        return names

    async def pseudonym(self, user: str, create: bool = True) -> str | None:
        cached = self._pseudonyms.get(user)
        if cached is not None:
            return cached
        found = await self.store.subject(user)
        if found is None:
            if not create:
                return None
            salt = secrets.token_hex(16)
            ps = "u_" + hmac.new(self.secret, f"{salt}:{user}".encode(), hashlib.sha256).hexdigest()[:32]
            found = await self.store.add_subject(user, salt, ps)
        if len(self._pseudonyms) > 10_000:
            self._pseudonyms.clear()
        self._pseudonyms[user] = found[1]
        return found[1]

    async def _pseudonym(self, user: str) -> str:
        ps = await self.pseudonym(user)
        assert ps is not None  # created when missing
        return ps

    async def aclose(self) -> None:
        if self._task is not None:
            # Ask the writer to stop between batches and wait for it. Not task.cancel(): a batch cancelled
            # mid-append leaves its SQLite transaction open in the worker thread, and wait_for() in
            # 3.11 can swallow a cancel, leaving the writer running into the final flush below.
            self._closing = True
            if self._wake is not None:
                self._wake.set()
            await self._task
            self._task = None
        await self.flush()
        await self.store.aclose()

    # ---- reading ---------------------------------------------------------------------------------
    async def verify(self, expected_head: str | None = None) -> VerifyResult:
        return await verify_chain(self.store, self.secret, expected_head)

    async def head(self) -> dict[str, Any]:
        last = await self.store.last()
        return {"id": last.id if last else 0, "mac": last.mac if last else GENESIS, "ts": last.ts if last else None}

    async def entries(self, since: float | None = None, until: float | None = None) -> list[AuditEntry]:
        out: list[AuditEntry] = []
        after = 0
        while True:
            page = await self.store.page(after, _PAGE)
            out += [e for e in page if (since is None or e.ts >= since) and (until is None or e.ts < until)]
            if len(page) < _PAGE:
                return out
            after = page[-1].id

    # ---- privacy hooks ---------------------------------------------------------------------------
    async def export_user(self, user: str) -> dict[str, Any]:
        ps = await self.pseudonym(user, create=False)
        if ps is None:
            return {"pseudonym": None, "entries": []}
        rows = await self.store.by_subject(ps)
        return {"pseudonym": ps, "entries": [
            {"id": e.id, "ts": e.ts, "kind": e.kind, "data": orjson.loads(e.data), **({"content": c} if c is not None else {})}
            for e, c in rows
        ]}

    async def erase_user(self, user: str) -> dict[str, Any]:
        ps = await self.pseudonym(user, create=False)
        if ps is None:
            return {"erased_content": 0, "unlinked": False}
        n = await self.store.erase_subject(user, ps)
        self._pseudonyms.pop(user, None)
        return {"erased_content": n, "unlinked": True}

    async def apply_retention(self, days: int) -> int:
        return await self.store.delete_content_before(self.clock() - days * 86400)
