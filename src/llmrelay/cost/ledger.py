"""The usage ledger: one row per request, written in batches off the request path.

Every request is recorded (answered, cached, joined, refused, failed, cancelled). The accounting
layer hands a :class:`LedgerRow` to :meth:`LedgerWriter.submit`, which only appends to a bounded
in-memory queue; a background task writes the rows in batches and keeps daily roll-ups, so the
request path never waits on a database. A graceful shutdown drains the queue.

Backends are chosen by the URL scheme of ``storage.url`` (one :class:`LedgerStore` Protocol):

    store = open_ledger("sqlite:///llmrelay.db")          # WAL mode; the default
    store = open_ledger("postgresql://u:pw@host/db")     # asyncpg (the ``postgres`` extra)
    writer = LedgerWriter(store, batch_size=500, flush_s=0.5)
    writer.submit(LedgerRow(ts=time.time(), request_id="req_1", status="ok"))
    await writer.aclose()                                   # drains, then closes the store
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any, Protocol

log = logging.getLogger("llmrelay.cost.ledger")


@dataclass(frozen=True, slots=True)
class LedgerRow:
    ts: float
    request_id: str
    status: str = "ok"
    error_code: str | None = None
    key_id: str | None = None
    user_id: str | None = None
    team: str | None = None
    session: str | None = None
    model_group: str | None = None
    provider: str | None = None
    model: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    cost_usd: float = 0.0
    cost_saved_usd: float = 0.0
    unpriced: bool = False
    latency_ms: float | None = None
    ttft_ms: float | None = None
    cache_status: str = "off"
    joined: bool = False
    # Hash of the whole prompt (repeats a response cache would serve) and of its stable prefix
    # (system prompt and tools: what provider-side prompt caching would discount).
    prompt_hash: str | None = None
    prefix_hash: str | None = None
    prefix_tokens: int = 0
    # The token counts are an estimate (the stream ended before the provider reported usage:
    # a client disconnect, a broken stream), not the provider's figures.
    estimated: bool = False


COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(LedgerRow))


@dataclass(frozen=True, slots=True)
class UsageQuery:
    """Aggregate usage from ``start`` to ``end`` (epoch seconds), grouped by ``by``.

    ``by`` names ledger columns, plus ``day``; ``filters`` are equality tests on columns. When
    ``days`` is set (first and last day label, inclusive) the window is whole calendar days and the
    store may answer from its daily roll-ups. Grouped answers are pages: the ``limit`` costliest
    groups from ``offset`` on (``count_groups`` says how many there are in all).
    """

    start: float = 0.0
    end: float | None = None
    by: tuple[str, ...] = ()
    filters: tuple[tuple[str, str], ...] = ()
    days: tuple[str, str] | None = None
    limit: int = 1000
    offset: int = 0


class LedgerStore(Protocol):
    """A ledger backend. ``write`` is called by one writer task at a time."""

    url: str

    async def open(self) -> None: ...

    async def write(self, rows: Sequence[LedgerRow]) -> None: ...

    async def aggregate(self, q: UsageQuery) -> list[dict[str, Any]]: ...

    async def count_groups(self, q: UsageQuery) -> int: ...

    async def repeated(self, column: str, start: float, min_count: int, limit: int) -> list[dict[str, Any]]:
        """Prompts (``prompt_hash``) or prefixes (``prefix_hash``) sent again within a day of the
        previous identical one, since ``start``, at least ``min_count`` times in all: ``hash, model,
        provider, n`` (identical requests), ``repeats`` (n - 1) and the repeats' ``cost_usd``,
        ``input_tokens``, ``cache_read_tokens``, ``prefix_tokens`` (per request)."""
        ...

    async def rows(self, start: float, end: float | None, limit: int) -> list[dict[str, Any]]: ...

    async def count(self) -> int: ...

    async def prune(self, before: float) -> int: ...

    async def aclose(self) -> None: ...


def open_ledger(url: str, *, timezone: str = "UTC") -> LedgerStore:
    """The ledger backend for ``url``: ``sqlite:///path`` (``sqlite://:memory:``) or ``postgresql://``."""
    scheme = url.partition("://")[0].lower()
    if scheme == "sqlite":
        from .ledger_sqlite import SQLiteLedger

        return SQLiteLedger(url, timezone=timezone)
    if scheme in ("postgresql", "postgres"):
        from .ledger_postgres import PostgresLedger

        return PostgresLedger(url, timezone=timezone)
    raise ValueError(f"storage.url {url!r}: unsupported scheme {scheme!r}; use sqlite:/// or postgresql://")


# A backlog of more than one batch is written up to this many batches at a time.
CATCH_UP = 8


class LedgerWriter:
    """A bounded queue of rows and the task that writes them in batches.

    ``submit`` never awaits. When the queue is full (the database is down for a long time) the
    newest rows are dropped and counted, so the gateway keeps serving instead of running out of
    memory. Shared by settings generations: each one ``acquire``s it and closing the last drains it.
    """

    def __init__(
        self,
        store: LedgerStore,
        *,
        batch_size: int = 500,
        flush_s: float = 0.5,
        max_queue: int = 100_000,
        metrics: Any = None,
        retention_s: float | None = None,
        clock: Any = None,
    ) -> None:
        self.store = store
        self.batch_size = batch_size
        self.flush_s = flush_s
        self.max_queue = max_queue
        self.metrics = metrics
        self.retention_s = retention_s
        self.clock = clock
        self.dropped = 0
        self._queue: collections.deque[LedgerRow] = collections.deque()
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._users = 0
        self._last_prune = 0.0
        self._lock: asyncio.Lock | None = None

    def acquire(self) -> None:
        self._users += 1

    @property
    def closed(self) -> bool:
        return self._closing and self._task is None

    @property
    def depth(self) -> int:
        return len(self._queue)

    def submit(self, row: LedgerRow) -> None:
        if len(self._queue) >= self.max_queue:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 10_000 == 0:
                log.error("usage ledger queue full (%d rows): %d rows dropped so far", self.max_queue, self.dropped)
            return
        self._queue.append(row)
        if self._task is None:
            self._start()
        elif len(self._queue) >= self.batch_size and self._wake is not None:
            self._wake.set()

    async def start(self) -> None:
        if self._task is None:
            await self.store.open()
            self._start()

    def _start(self) -> None:
        self._wake = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="llmrelay-ledger-writer")

    async def _run(self) -> None:
        await self.store.open()
        assert self._wake is not None
        while True:
            if not self._queue and not self._closing:
                try:
                    await asyncio.wait_for(self._wake.wait(), self.flush_s)
                except TimeoutError:
                    pass
                self._wake.clear()
            await self._flush_once()
            await self._maybe_prune()
            if self._closing and not self._queue:
                return

    async def _flush_once(self) -> None:
        # One batch in flight at a time, so flush() returns only once everything is written.
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            await self._write_batch()

    async def _write_batch(self) -> None:
        # A backlog is written in larger batches (up to CATCH_UP batches at once): under sustained
        # load the event loop is busy and each write's round trip to the writer thread waits
        # behind it, so a fixed 500-row batch capped the writer at ~800 rows/s in the 1,000-client
        # soak while ~1,100 arrived (the queue grew until the load stopped). The per-row work is
        # the same; the per-batch wait is paid once for more rows.
        take = min(self.batch_size * CATCH_UP if len(self._queue) > self.batch_size else self.batch_size,
                   len(self._queue))
        batch = [self._queue.popleft() for _ in range(take)]
        if self.metrics is not None:
            self.metrics.ledger_queue.set(len(self._queue))
        if not batch:
            return
        try:
            await self.store.write(batch)
        except Exception:
            log.exception("usage ledger write failed; %d rows will be retried", len(batch))
            self._queue.extendleft(reversed(batch))
            if not self._closing:
                await asyncio.sleep(min(5.0, self.flush_s * 4))
            else:
                raise

    async def _maybe_prune(self) -> None:
        if self.retention_s is None:
            return
        import time

        now = self.clock.time() if self.clock is not None else time.time()
        if now - self._last_prune < 3600:
            return
        self._last_prune = now
        try:
            removed = await self.store.prune(now - self.retention_s)
            if removed:
                log.info("usage ledger: pruned %d rows older than the retention period", removed)
        except Exception:
            log.exception("usage ledger retention failed")

    async def flush(self) -> None:
        """Write everything queued so far (tests, admin)."""
        while True:
            await self._flush_once()
            if not self._queue:
                return

    async def aclose(self) -> None:
        """Release one user; the last one drains the queue and closes the store."""
        self._users -= 1
        if self._users > 0:
            return
        self._closing = True
        if self._task is not None:
            assert self._wake is not None
            self._wake.set()
            try:
                await self._task
            except Exception:
                log.exception("usage ledger: %d rows could not be written at shutdown", len(self._queue))
            self._task = None
        await self.store.aclose()
