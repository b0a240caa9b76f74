"""A cancel-on-expiry timer for one await, lighter than ``asyncio.timeout``.

The router times every upstream attempt. ``asyncio.timeout`` is a context manager object whose
``__aenter__``/``__aexit__`` are coroutines and whose deadline goes through ``reschedule``; on a
request that takes well under a millisecond of CPU that was ~2% of it (benchmarks/results/
profile_round9_passthrough.md). This is the same mechanism -- a timer handle that cancels the
task, and a cancellation it caused turned into ``TimeoutError`` -- with one object and no coroutines:

    timer = Timer(5.0)
    try:
        result = await work()
    finally:
        timer.stop()    # raises TimeoutError if the timer cancelled ``work``

``stop`` must run exactly once, in a ``finally`` around the await (it reads the exception being
handled to tell a cancellation it caused from one it did not, as ``asyncio.timeout`` does).
"""

from __future__ import annotations

import asyncio
import sys


class Timer:
    __slots__ = ("_cancelling", "_expired", "_handle", "_task")

    def __init__(self, seconds: float) -> None:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("Timer must be used inside a task")
        self._task = task
        # Cancellations already requested before this timer: not ours to turn into a timeout.
        self._cancelling = task.cancelling()
        self._expired = False
        self._handle = asyncio.get_running_loop().call_later(seconds, self._expire)

    def _expire(self) -> None:
        self._expired = True
        self._task.cancel()

    def stop(self) -> None:
        """Disarm; raise TimeoutError when this timer's cancellation is what is propagating."""
        self._handle.cancel()
        if not self._expired:
            return
        self._expired = False
        # Our cancel is withdrawn whatever happens; only when no other cancel was asked for, and a
        # CancelledError is what ends the await, does it become a timeout (asyncio.timeout's rule).
        if self._task.uncancel() <= self._cancelling and isinstance(sys.exc_info()[1], asyncio.CancelledError):
            raise TimeoutError
