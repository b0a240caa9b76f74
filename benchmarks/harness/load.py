"""The load generator: N keep-alive clients sending requests back to back, and their statistics.

Each client owns one connection (aiohttp, ``limit=concurrency``) and sends the next request as soon
as the previous answer is read completely. Latency is measured to the last byte; for streams the
time to the first body bytes (the first event) is recorded as well.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import aiohttp


@dataclass(frozen=True, slots=True)
class Sample:
    """What one phase measured, from the client side."""

    requests: int
    errors: int
    seconds: float
    latencies: tuple[float, ...]
    first_chunk: tuple[float, ...]
    # What went wrong, counted: "status 503", "ServerDisconnectedError", ... (empty when no errors).
    error_kinds: dict[str, int] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def p(self, q: float, first: bool = False) -> float | None:
        values = sorted(self.first_chunk if first else self.latencies)
        if not values:
            return None
        return values[min(len(values) - 1, int(q * len(values)))]


async def run_load(url: str, bodies: Sequence[bytes], headers: dict[str, str], concurrency: int,
                   requests: int, stream: bool, max_seconds: float = 30.0) -> Sample:
    """Send ``requests`` POSTs (cycling through ``bodies``) from ``concurrency`` clients; stop early
    after ``max_seconds`` so a slow target cannot hold the run."""
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False, ttl_dns_cache=None)
    timeout = aiohttp.ClientTimeout(total=60)
    latencies: list[float] = []
    firsts: list[float] = []
    errors = 0
    kinds: Counter[str] = Counter()
    counter = iter(range(requests))
    start = time.perf_counter()
    deadline = start + max_seconds

    async def client(session: aiohttp.ClientSession) -> None:
        nonlocal errors
        for i in counter:
            if time.perf_counter() > deadline:
                return
            body = bodies[i % len(bodies)]
            t0 = time.perf_counter()
            try:
                async with session.post(url, data=body, headers=headers) as resp:
                    if stream:
                        first = True
                        async for _ in resp.content.iter_any():
                            if first:
                                firsts.append(time.perf_counter() - t0)
                                first = False
                    else:
                        await resp.read()
                    ok = resp.status == 200
                    if not ok:
                        kinds[f"status {resp.status}"] += 1
            except (TimeoutError, aiohttp.ClientError) as exc:
                ok = False
                kinds[type(exc).__name__] += 1
            if ok:
                latencies.append(time.perf_counter() - t0)
            else:
                errors += 1

    async with aiohttp.ClientSession(connector=connector, timeout=timeout, trust_env=False,
                                     skip_auto_headers=("User-Agent",)) as session:
        await asyncio.gather(*(client(session) for _ in range(concurrency)))
    seconds = time.perf_counter() - start
    return Sample(len(latencies), errors, seconds, tuple(latencies), tuple(firsts), dict(kinds))
