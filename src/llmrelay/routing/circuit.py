"""A circuit breaker per deployment: closed, open, half-open with a single trial request.

Failures are counted in a sliding time window. When ``failures`` of them fall within ``window_s``,
the breaker opens and the deployment is skipped for ``cooldown_s``; then one trial request is let
through (half-open). Its success closes the breaker, its failure opens it again.

    >>> from llmrelay.clock import ManualClock
    >>> clock = ManualClock()
    >>> cb = CircuitBreaker(failures=2, window_s=10, cooldown_s=5, clock=clock)
    >>> cb.record_failure(); cb.record_failure(); cb.state
    'open'
    >>> cb.allow()
    False
    >>> clock.advance(5); cb.allow(), cb.state, cb.allow()
    (True, 'half_open', False)
    >>> cb.record_success(); cb.state
    'closed'

The breaker is touched by one event loop only, so it needs no lock.
"""

from __future__ import annotations

from collections import deque
from typing import Literal

from ..clock import Clock

State = Literal["closed", "open", "half_open"]
# Gauge values for services.metrics.circuit_state.
STATE_VALUE: dict[str, int] = {"closed": 0, "half_open": 1, "open": 2}


class CircuitBreaker:
    __slots__ = ("_failures", "_opened_at", "_trial_started", "clock", "cooldown_s", "failures", "state", "window_s")

    def __init__(self, failures: int, window_s: float, cooldown_s: float, clock: Clock) -> None:
        self.failures = failures
        self.window_s = window_s
        self.cooldown_s = cooldown_s
        self.clock = clock
        self.state: State = "closed"
        self._failures: deque[float] = deque()
        self._opened_at = 0.0
        self._trial_started: float | None = None

    def allow(self) -> bool:
        """Whether a request may go to this deployment now (half-open admits one trial)."""
        if self.state == "closed":
            return True
        now = self.clock.monotonic()
        if self.state == "open":
            if now - self._opened_at < self.cooldown_s:
                return False
            self.state = "half_open"
            self._trial_started = now
            return True
        # Half-open: one trial at a time; a trial that never reported (cancelled) expires.
        if self._trial_started is not None and now - self._trial_started < self.cooldown_s:
            return False
        self._trial_started = now
        return True

    def available(self) -> bool:
        """Like :meth:`allow` but without claiming the half-open trial (for ordering candidates)."""
        if self.state == "closed":
            return True
        now = self.clock.monotonic()
        if self.state == "open":
            return now - self._opened_at >= self.cooldown_s
        return self._trial_started is None or now - self._trial_started >= self.cooldown_s

    def record_success(self) -> None:
        if self.state != "closed":
            self.state = "closed"
            self._trial_started = None
        self._failures.clear()

    def record_failure(self) -> None:
        now = self.clock.monotonic()
        if self.state == "half_open":
            self._open(now)
            return
        if self.state == "open":
            return
        window = self._failures
        window.append(now)
        while window and now - window[0] > self.window_s:
            window.popleft()
        if len(window) >= self.failures:
            self._open(now)

    def trip(self) -> None:
        """Open now (a failed health check or start-up check)."""
        self._open(self.clock.monotonic())

    def _open(self, now: float) -> None:
        self.state = "open"
        self._opened_at = now
        self._trial_started = None
        self._failures.clear()

    @property
    def retry_in(self) -> float:
        """Seconds until an open breaker lets a trial through (0 when it would now)."""
        if self.state != "open":
            return 0.0
        return max(0.0, self.cooldown_s - (self.clock.monotonic() - self._opened_at))
