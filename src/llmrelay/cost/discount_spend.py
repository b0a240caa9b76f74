"""Spend in the current volume-discount period, the figure volume tiers are decided on.

Pricing is synchronous (the router prices usage as it arrives), so the engine asks a spend object
``add(label, amount, ttl_s) -> spend before this amount`` and never awaits:

* :class:`LocalSpend`: this process only (no ``redis.url``).
* :class:`SharedSpend`: the fleet's spend, through the budget counter store (Redis behind the
  process's circuit, :mod:`llmrelay.shared_state.counters`). Each ``add`` answers from the fleet
  total last read plus what this process added since, and starts (or lets run) one background push
  that adds the new spend to the shared counter and reads the fleet total back. So a tier is decided
  on a figure at most one Redis round trip old, and the request path never waits on Redis.

    spend = SharedSpend(counters)              # counters: a CounterStore (adjust() is all it uses)
    before = spend.add("2026-01", 0.25, ttl_s=86400 * 31)
    await spend.aclose()                       # pushes what is still pending (shutdown, reload)
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

log = logging.getLogger("llmrelay.cost")

MICRO = 1_000_000
KEY_PREFIX = "llmrelay:discount-spend:"


class LocalSpend:
    """Spend in the current period for this process (thread-safe: SyncRelay, workers)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.label = ""
        self.total = 0.0

    def add(self, label: str, amount: float, ttl_s: float = 0.0) -> float:
        """Add ``amount`` and return the spend *before* it, in period ``label``."""
        with self._lock:
            if label != self.label:
                self.label, self.total = label, 0.0
            before = self.total
            self.total += amount
            return before

    async def aclose(self) -> None:
        return None


class SharedSpend:
    """The fleet's spend in the current period, kept in the shared counter store (micro-dollars)."""

    def __init__(self, counters: Any) -> None:
        self.counters = counters
        self._lock = threading.Lock()
        self.label = ""
        self._fleet = 0.0     # the shared total as last read back (includes our pushed spend)
        self._pending = 0.0   # added here, not pushed yet
        self._ttl = 1
        self._task: asyncio.Task[None] | None = None

    def add(self, label: str, amount: float, ttl_s: float = 0.0) -> float:
        with self._lock:
            if label != self.label:
                # A new period: the old one's unpushed spend no longer decides any tier.
                self.label, self._fleet, self._pending = label, 0.0, 0.0
            before = self._fleet + self._pending
            self._pending += amount
            self._ttl = max(1, int(ttl_s))
        self._schedule()
        return before

    @property
    def total(self) -> float:
        with self._lock:
            return self._fleet + self._pending

    def _schedule(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop in this thread: the next add (or aclose) pushes it
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._push(), name="llmrelay-discount-spend")

    async def _push(self) -> None:
        """Push pending spend until none is left; one push in flight at a time."""
        while True:
            with self._lock:
                # Whole micro-dollars go; the fraction stays pending, so small calls add up exactly.
                micros = int(self._pending * MICRO)
                label, ttl = self.label, self._ttl
                if micros <= 0:
                    return
                self._pending -= micros / MICRO
            try:
                values = await self.counters.adjust([KEY_PREFIX + label], micros, [ttl])
            except Exception as exc:  # Redis down and fail_closed, or a bug: keep it for next time
                with self._lock:
                    if label == self.label:
                        self._pending += micros / MICRO
                log.warning("volume-discount spend not shared (%s); kept locally until the next push", exc)
                return
            with self._lock:
                if label == self.label:
                    self._fleet = values[0] / MICRO

    async def refresh(self, label: str, ttl_s: float) -> float:
        """Read the fleet total for ``label`` now (start-up, tests); returns it."""
        values = await self.counters.adjust([KEY_PREFIX + label], 0, [max(1, int(ttl_s))])
        with self._lock:
            if label != self.label:
                self.label, self._pending = label, 0.0
            self._fleet = values[0] / MICRO
            return self._fleet + self._pending

    async def aclose(self) -> None:
        task = self._task
        if task is not None and not task.done():
            await asyncio.shield(task)
        await self._push()
