"""Backoff policies: small composable callables, with randomness injected.

A policy maps the retry number (1 for the first retry) and the error that caused it to the seconds
to wait. Compose them like tenacity's ``wait`` functions:

    >>> import random
    >>> policy = honour_retry_after(full_jitter(base_s=0.25, max_s=8.0, rand=random.Random(7).random))
    >>> 0 <= policy(1, None) <= 0.25
    True
    >>> from llmrelay.errors import RateLimitError
    >>> policy(1, RateLimitError("slow down", retry_after=3.0))
    3.0

The router sleeps through ``services.clock.sleep`` so tests with a ManualClock never wait.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TypeAlias

from ..errors import LLMRelayError

Backoff: TypeAlias = Callable[[int, LLMRelayError | None], float]


def full_jitter(base_s: float, max_s: float, rand: Callable[[], float] = random.random) -> Backoff:
    """AWS "full jitter": uniform in [0, min(max_s, base_s * 2**(retry-1))]. Spreads retries of
    many clients over time instead of synchronising them into waves."""

    def wait(retry: int, error: LLMRelayError | None) -> float:
        cap = min(max_s, base_s * (2 ** max(0, retry - 1)))
        return rand() * cap

    return wait


def honour_retry_after(policy: Backoff, max_s: float = 60.0) -> Backoff:
    """Wait at least what the upstream asked for (``Retry-After``, reset headers), up to ``max_s``."""

    def wait(retry: int, error: LLMRelayError | None) -> float:
        delay = policy(retry, error)
        if error is not None and error.retry_after is not None:
            delay = max(delay, min(float(error.retry_after), max_s))
        return delay

    return wait


def no_wait(retry: int, error: LLMRelayError | None) -> float:
    return 0.0


def default_backoff(base_s: float, max_s: float, rand: Callable[[], float] = random.random) -> Backoff:
    """The router's policy: full jitter that honours Retry-After."""
    return honour_retry_after(full_jitter(base_s, max_s, rand), max_s=max(max_s, 60.0))


def is_deployment_fault(error: LLMRelayError) -> bool:
    """An error that says this deployment is broken or misconfigured (not the request): worth
    trying another deployment even when retrying the same one would not help (bad key, a model
    name the upstream does not know)."""
    if error.retryable:
        return True
    return error.upstream_status in (401, 403, 404)
