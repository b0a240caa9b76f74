"""Token buckets for requests per minute and tokens per minute, on an injected clock.

A bucket holds up to ``capacity`` units and refills ``capacity`` per ``period_s``. Taking never
blocks: it answers how long to wait when there is not enough. A :class:`Limit` takes from an RPM and
a TPM bucket together, or from neither; :class:`AllOf` does the same across several limits.

    >>> from llmrelay.clock import ManualClock
    >>> clock = ManualClock()
    >>> rpm = TokenBucket(capacity=2, period_s=60, clock=clock)
    >>> rpm.try_take(1), rpm.try_take(1), rpm.try_take(1)
    (0.0, 0.0, 30.0)

Token counts are estimates before the call; :meth:`TokenBucket.adjust` corrects them once the real
usage is known (a bucket may go into debt, which later requests wait out).
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Protocol

from ..clock import Clock


class TokenBucket:
    __slots__ = ("_tokens", "_updated", "capacity", "clock", "rate")

    def __init__(self, capacity: float, period_s: float, clock: Clock) -> None:
        self.capacity = float(capacity)
        self.rate = self.capacity / period_s
        self.clock = clock
        self._tokens = self.capacity
        self._updated = clock.monotonic()

    def _refill(self) -> float:
        now = self.clock.monotonic()
        elapsed = now - self._updated
        if elapsed > 0:
            self._tokens = min(self.capacity, self._tokens + elapsed * self.rate)
            self._updated = now
        return self._tokens

    def wait_for(self, n: float) -> float:
        """Seconds until ``n`` units could be taken (0 if now). A request larger than the whole
        bucket is let through when the bucket is full, else it could never pass."""
        tokens = self._refill()
        need = min(n, self.capacity)
        if tokens >= need:
            return 0.0
        return (need - tokens) / self.rate

    def take(self, n: float) -> None:
        self._refill()
        self._tokens -= n

    def try_take(self, n: float = 1.0) -> float:
        wait = self.wait_for(n)
        if wait == 0.0:
            self._tokens -= n  # wait_for has just refilled: one clock reading decides and takes
        return wait

    def adjust(self, delta: float) -> None:
        """Take ``delta`` more units (negative gives some back), e.g. actual minus estimated tokens."""
        self._refill()
        self._tokens = min(self.capacity, self._tokens - delta)

    @property
    def available(self) -> float:
        return self._refill()


class Limiter(Protocol):
    """What the router and the ratelimit layer need from a limit, local or shared (Redis)."""

    def acquire(self, tokens: float) -> Awaitable[float]:
        """Take one request and ``tokens`` tokens; 0.0 if granted, else seconds to wait (nothing taken)."""
        ...

    def correct(self, delta_tokens: float) -> Awaitable[None]:
        """Account the difference between the real and the estimated token count."""
        ...


@dataclass(slots=True)
class Limit:
    """RPM and/or TPM for one scope (a deployment, a key, a user), in this process."""

    rpm: TokenBucket | None = None
    tpm: TokenBucket | None = None

    @classmethod
    def per_minute(cls, rpm: int | None, tpm: int | None, clock: Clock) -> Limit | None:
        if not rpm and not tpm:
            return None
        return cls(
            TokenBucket(rpm, 60.0, clock) if rpm else None,
            TokenBucket(tpm, 60.0, clock) if tpm else None,
        )

    def wait_for(self, tokens: float) -> float:
        """Seconds until one request and ``tokens`` tokens could be taken (0 if now); takes nothing."""
        wait = 0.0
        if self.rpm is not None:
            wait = self.rpm.wait_for(1)
        if self.tpm is not None:
            wait = max(wait, self.tpm.wait_for(tokens))
        return wait

    def take(self, tokens: float) -> None:
        if self.rpm is not None:
            self.rpm.take(1)
        if self.tpm is not None:
            self.tpm.take(tokens)

    def try_acquire(self, tokens: float) -> float:
        # Every request of a limited key comes here: each bucket is refilled once (in wait_for),
        # and the same reading that decided is the one taken from (take() would refill again).
        wait = self.wait_for(tokens)
        if wait == 0.0:
            if self.rpm is not None:
                self.rpm._tokens -= 1
            if self.tpm is not None:
                self.tpm._tokens -= tokens
        return wait

    async def acquire(self, tokens: float) -> float:
        return self.try_acquire(tokens)

    def correct_now(self, delta_tokens: float) -> None:
        if self.tpm is not None and delta_tokens:
            self.tpm.adjust(delta_tokens)

    async def correct(self, delta_tokens: float) -> None:
        self.correct_now(delta_tokens)

    @property
    def idle(self) -> bool:
        """Every bucket is full: forgetting this limit and making it again later changes nothing."""
        return all(b is None or b.available >= b.capacity for b in (self.rpm, self.tpm))


@dataclass(frozen=True, slots=True)
class AllOf:
    """Several limits that apply to one request (its key's and its user's): it takes from every
    one or from none, so a refusal by one never spends another's capacity.

        both = AllOf((key_limit, user_limit))
        wait = both.try_acquire(500)       # 0.0 = taken from both, else seconds (nothing taken)
    """

    limits: tuple[Limit, ...]

    def try_acquire(self, tokens: float) -> float:
        wait = max(limit.wait_for(tokens) for limit in self.limits)
        if wait == 0.0:
            for limit in self.limits:
                limit.take(tokens)
        return wait

    async def acquire(self, tokens: float) -> float:
        return self.try_acquire(tokens)

    def correct_now(self, delta_tokens: float) -> None:
        for limit in self.limits:
            limit.correct_now(delta_tokens)

    async def correct(self, delta_tokens: float) -> None:
        self.correct_now(delta_tokens)
