"""The waiting room for requests over a limit: served by priority, round-robin among callers.

A request that cannot be admitted now waits here. Whenever capacity may have freed up, waiting
requests are tried in order: all ``high`` before ``normal`` before ``low``, and within one priority
one request per caller (key) in turn, so a noisy key with a hundred requests queued cannot starve
a quiet one. A request that waits longer than ``max_wait_s`` is refused with a 429 and the time it
would have needed as ``Retry-After``.

    >>> import asyncio
    >>> from llmrelay.clock import ManualClock
    >>> from llmrelay.ratelimit.bucket import Limit
    >>> clock = ManualClock()
    >>> limit = Limit.per_minute(rpm=60, tpm=None, clock=clock)     # one request a second
    >>> queue = FairQueue(clock)
    >>> async def admit():
    ...     return [await queue.acquire(lambda: limit.try_acquire(1), "normal", "key-1", 5.0)
    ...             for _ in range(3)]
    >>> asyncio.run(admit())[0]
    0.0

``try_admit`` takes what it needs and returns 0.0, or takes nothing and returns the seconds to
wait; it may be a coroutine function (a Redis-backed limit).
"""

from __future__ import annotations

import asyncio
import inspect
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from ..clock import Clock
from ..context import PRIORITY_RANK
from ..errors import RateLimitError

TryAdmit = Callable[[], "float | Awaitable[float]"]


@dataclass(slots=True, eq=False)
class _Waiter:
    try_admit: TryAdmit
    future: asyncio.Future[None]
    wait_hint: float = 0.0
    owner: str = ""
    tried: bool = field(default=False)


class FairQueue:
    __slots__ = ("_lanes", "_lock", "clock", "waiting")

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        # priority rank -> owner -> that owner's waiters, oldest first; owners in round-robin order.
        self._lanes: dict[int, OrderedDict[str, deque[_Waiter]]] = {r: OrderedDict() for r in sorted(set(PRIORITY_RANK.values()))}
        self._lock: asyncio.Lock | None = None
        self.waiting = 0

    async def acquire(self, try_admit: TryAdmit, priority: str, owner: str, max_wait_s: float) -> float:
        """Admit the request, waiting in line if needed; returns the seconds waited, or raises
        RateLimitError (with ``retry_after``) after ``max_wait_s``."""
        if self.waiting == 0:
            wait = await _call(try_admit)
            if wait == 0.0:
                return 0.0
            if max_wait_s <= 0 or wait > max_wait_s:
                raise _refusal(wait)
        started = self.clock.monotonic()
        waiter = _Waiter(try_admit, asyncio.get_running_loop().create_future(), owner=owner)
        lane = self._lanes[PRIORITY_RANK.get(priority, 1)]
        lane.setdefault(owner, deque()).append(waiter)
        self.waiting += 1
        try:
            await self._pump()
            while not waiter.future.done():
                now = self.clock.monotonic()
                left = started + max_wait_s - now
                if left <= 0 or (waiter.tried and waiter.wait_hint > left + 1e-9):
                    raise _refusal(max(waiter.wait_hint, 0.001))
                await self._sleep_or_admitted(waiter, min(max(waiter.wait_hint, 0.001), left))
                if not waiter.future.done():
                    await self._pump()
        finally:
            if not waiter.future.done():
                self._remove(lane, waiter)
        return self.clock.monotonic() - started

    async def _sleep_or_admitted(self, waiter: _Waiter, seconds: float) -> None:
        sleeper = asyncio.ensure_future(self.clock.sleep(seconds))
        try:
            await asyncio.wait({waiter.future, sleeper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()

    def _remove(self, lane: OrderedDict[str, deque[_Waiter]], waiter: _Waiter) -> None:
        queue = lane.get(waiter.owner)
        if queue is not None and waiter in queue:
            queue.remove(waiter)
            self.waiting -= 1
            if not queue:
                del lane[waiter.owner]

    async def _pump(self) -> None:
        """Admit every waiter that fits now, in priority then round-robin order."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            for lane in self._lanes.values():
                admitted = True
                while admitted and lane:
                    admitted = False
                    for owner in list(lane):
                        queue = lane[owner]
                        head = queue[0]
                        wait = await _call(head.try_admit)
                        head.tried = True
                        if wait == 0.0:
                            queue.popleft()
                            self.waiting -= 1
                            del lane[owner]
                            if queue:
                                lane[owner] = queue  # to the back: the next owner's turn
                            if not head.future.done():
                                head.future.set_result(None)
                            admitted = True
                        else:
                            for w in queue:
                                w.wait_hint = wait


async def _call(try_admit: TryAdmit) -> float:
    result = try_admit()
    if inspect.isawaitable(result):
        result = await result
    return float(result)


def _refusal(wait: float) -> RateLimitError:
    return RateLimitError(
        f"rate limit reached; retry in {wait:.1f} s (the gateway's per-key, per-user or per-deployment limit)",
        retry_after=wait,
    )
