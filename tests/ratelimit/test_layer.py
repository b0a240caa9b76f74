"""The ratelimit layer: a key limited to N requests per minute gets exactly N through in a window,
whatever the concurrency; in one process, and across gateway instances sharing a real Redis."""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from llmrelay.clock import ManualClock
from llmrelay.config import Settings
from llmrelay.context import RequestContext
from llmrelay.errors import RateLimitError
from llmrelay.layers import ratelimit
from llmrelay.metrics import Metrics
from llmrelay.services import Services
from llmrelay.types import ChatRequest, Chunk, Message, Usage

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Key:
    """The attributes of a virtual key the layer reads (llmrelay.keys.VirtualKey has them all)."""

    id: str
    rpm: int | None = None
    tpm: int | None = None
    priority: str = "normal"


async def _upstream(request: ChatRequest, ctx: RequestContext) -> Any:
    ctx.usage = Usage(input_tokens=5, output_tokens=5)
    yield Chunk(text="ok", finish_reason="stop", usage=ctx.usage)


def _layer(clock: Any, redis_url: str | None = None, max_wait_s: float = 0.0, **limits: Any) -> Any:
    data: dict[str, Any] = {"ratelimit": {"max_wait_s": max_wait_s, **limits}}
    if redis_url:
        data["redis"] = {"url": redis_url}
    services = Services.build(Settings.from_dict(data), clock=clock)
    services.metrics = Metrics()
    layer = ratelimit.build(services, _upstream)
    assert layer is not None
    return layer, services


async def _call(layer: Any, key: Key | None, user: str | None = None) -> bool:
    ctx = RequestContext(key=key, key_id=key.id if key else None, user=user)
    try:
        async for _ in layer(ChatRequest(model="m", messages=(Message.user("hello"),)), ctx):
            pass
    except RateLimitError as exc:
        assert exc.retry_after is not None and exc.retry_after > 0
        return False
    return True


@pytest.mark.parametrize("concurrency", [1, 50])
async def test_exactly_n_per_window_locally(concurrency: int) -> None:
    clock = ManualClock()
    layer, services = _layer(clock)
    key = Key("k1", rpm=7)
    ok = total = 0
    for _ in range(0, 40, concurrency):
        results = await asyncio.gather(*(_call(layer, key) for _ in range(concurrency)))
        ok += sum(results)
        total += len(results)
    assert ok == 7
    refused = services.metrics.registry.get_sample_value("llmrelay_ratelimited_total", {"scope": "key"})
    assert refused == total - 7
    # Another key has its own limit.
    assert await _call(layer, Key("k2", rpm=1))


async def test_key_without_limits_passes() -> None:
    layer, _ = _layer(ManualClock())
    assert all([await _call(layer, Key("free")) for _ in range(100)])


async def test_tpm_is_corrected_from_real_usage() -> None:
    clock = ManualClock()
    layer, _ = _layer(clock)
    # The estimate is ~1 + 256 tokens; real usage is 10: the correction gives the rest back.
    key = Key("t", tpm=600)
    assert sum([await _call(layer, key) for _ in range(10)]) >= 5


async def test_waiting_requests_are_admitted_within_max_wait() -> None:
    clock = ManualClock()
    layer, services = _layer(clock, max_wait_s=30.0)
    key = Key("w", rpm=6)  # one every 10 s
    results = [await _call(layer, key) for _ in range(8)]
    assert all(results)
    assert clock.monotonic() >= 19.9  # the last two waited for capacity
    count = services.metrics.registry.get_sample_value("llmrelay_ratelimit_wait_seconds_count", {"priority": "normal"})
    assert count == 8


@pytest.mark.redis
async def test_exactly_n_across_instances_with_redis(redis_url: str) -> None:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(redis_url)
    await client.flushdb()
    await client.aclose()
    # Three gateway instances (separate services, limiters and clients) share the limit.
    layers = [_layer(ManualClock(), redis_url)[0] for _ in range(3)]
    key = Key("shared", rpm=10)
    results = await asyncio.gather(*(_call(layers[i % 3], key) for i in range(60)))
    assert sum(results) == 10


@pytest.mark.redis
async def test_exactly_n_across_processes_with_redis(redis_url: str, tmp_path: Any) -> None:
    import os
    import sys

    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(redis_url)
    await client.flushdb()
    await client.aclose()
    script = tmp_path / "worker.py"
    script.write_text(
        "import asyncio, sys\n"
        "from tests.ratelimit.test_layer import _layer, _call, Key\n"
        "from llmrelay.clock import SystemClock\n"
        "async def main():\n"
        "    layer, _ = _layer(SystemClock(), sys.argv[1])\n"
        "    print('ready', flush=True)\n"
        "    sys.stdin.readline()\n"
        "    r = await asyncio.gather(*(_call(layer, Key('proc', rpm=12)) for _ in range(20)))\n"
        "    print(sum(r))\n"
        "asyncio.run(main())\n"
    )
    root = ROOT
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, str(script), redis_url, cwd=str(root), stdout=asyncio.subprocess.PIPE,
            stdin=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(root)},
        )
        for _ in range(3)
    ]
    # Start the calls together once every process has imported and built its layer: the bucket
    # refills one request every 5 s, so processes starting seconds apart on a busy machine would
    # be allowed a 13th.
    for p in procs:
        assert p.stdout is not None
        assert await asyncio.wait_for(p.stdout.readline(), 60) == b"ready\n"
    for p in procs:
        assert p.stdin is not None
        p.stdin.write(b"go\n")
        await p.stdin.drain()
    outs = [await asyncio.wait_for(p.communicate(), 60) for p in procs]
    assert sum(int(out.decode().strip()) for out, _ in outs) == 12


async def test_unreachable_redis_falls_back_to_local_limits() -> None:
    clock = ManualClock()
    layer, services = _layer(clock, "redis://127.0.0.1:1/0")
    key = Key("fb", rpm=3)
    results = [await _call(layer, key) for _ in range(5)]
    assert sum(results) == 3
    errors = services.metrics.registry.get_sample_value("llmrelay_ratelimit_backend_errors_total", {})
    assert errors is not None and errors >= 1


def _refused(services: Services, scope: str) -> float:
    return services.metrics.registry.get_sample_value("llmrelay_ratelimited_total", {"scope": scope}) or 0.0


@pytest.mark.parametrize("concurrency", [1, 50])
async def test_user_gets_exactly_n_across_two_keys(concurrency: int) -> None:
    layer, services = _layer(ManualClock(), user_rpm=5)
    keys = [Key("ka"), Key("kb")]  # keys without limits of their own
    results: list[bool] = []
    for start in range(0, 40, concurrency):
        results += await asyncio.gather(*(_call(layer, keys[i % 2], "alice") for i in range(start, start + concurrency)))
    assert sum(results) == 5
    assert _refused(services, "user") == len(results) - 5
    # Another user, and a request with no user, are not held by alice's limit.
    assert await _call(layer, keys[0], "bob")
    assert all([await _call(layer, keys[1]) for _ in range(10)])


async def test_user_limit_without_a_key() -> None:
    clock = ManualClock()
    layer, _ = _layer(clock, user_rpm=2)
    assert [await _call(layer, None, "anon-user") for _ in range(3)] == [True, True, False]
    clock.advance(30.0)  # half a minute refills one request
    assert await _call(layer, None, "anon-user")


async def test_refused_by_the_user_limit_spends_nothing_of_the_key() -> None:
    layer, services = _layer(ManualClock(), user_rpm=3)
    key = Key("shared-key", rpm=5)
    alice = [await _call(layer, key, "alice") for _ in range(10)]
    assert alice == [True] * 3 + [False] * 7
    # The seven refusals took nothing from the key: two requests left for bob, then the key refuses.
    bob = [await _call(layer, key, "bob") for _ in range(4)]
    assert bob == [True, True, False, False]
    assert _refused(services, "key+user") == 9


async def test_refused_by_the_key_limit_spends_nothing_of_the_user() -> None:
    layer, _ = _layer(ManualClock(), user_rpm=4)
    small, big = Key("small", rpm=1), Key("big", rpm=100)
    assert [await _call(layer, small, "carol") for _ in range(5)] == [True] + [False] * 4
    assert [await _call(layer, big, "carol") for _ in range(5)] == [True] * 3 + [False] * 2


async def test_user_tpm_is_corrected_from_real_usage() -> None:
    layer, _ = _layer(ManualClock(), user_tpm=600)
    # Each estimate is ~257 tokens, each real use 10: without the correction only two would pass.
    assert sum([await _call(layer, None, "dave") for _ in range(10)]) >= 5


async def test_no_limit_path_returns_the_inner_stream() -> None:
    layer, _ = _layer(ManualClock())
    request = ChatRequest(model="m", messages=(Message.user("hi"),))
    stream = layer(request, RequestContext(key=Key("free"), key_id="free", user="someone"))
    assert stream.ag_code is _upstream.__code__
    await stream.aclose()


async def test_idle_users_are_forgotten_past_the_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ratelimit, "MAX_USERS", 10)
    clock = ManualClock()
    layer, services = _layer(clock, user_rpm=1)
    assert await _call(layer, None, "busy")
    assert not await _call(layer, None, "busy")
    for i in range(40):
        assert await _call(layer, None, f"u{i}")
    users = services.state[ratelimit.USERS_KEY]
    # Nobody's bucket refilled yet, so nobody could be forgotten without resetting a limit.
    assert "busy" in users and not await _call(layer, None, "busy")
    clock.advance(61.0)
    for i in range(40, 80):
        assert await _call(layer, None, f"u{i}")
    # Every refilled user was forgotten; the forty just used are kept (their limits are live).
    assert set(users) == {f"u{i}" for i in range(40, 80)}


@pytest.mark.redis
async def test_user_limit_across_instances_and_keys_with_redis(redis_url: str) -> None:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(redis_url)
    await client.flushdb()
    await client.aclose()
    layers = [_layer(ManualClock(), redis_url, user_rpm=6)[0] for _ in range(3)]
    key_a, key_b = Key("ra", rpm=50), Key("rb")
    # The Redis limiter refills by the server's clock (50 rpm: one token per 1.2 s), so a run slowed
    # by a busy machine may see a refill; the bound allows exactly the tokens that time could add.
    started = time.monotonic()
    results = await asyncio.gather(*(_call(layers[i % 3], (key_a, key_b)[i % 2], "erin") for i in range(40)))
    assert 6 <= sum(results) <= 6 + _refilled(6, started)
    # Erin's refusals under key ra took none of its 50: 47 left for other users (3 of erin's used it).
    erin_under_a = sum(results[0::2])
    others = await asyncio.gather(*(_call(layers[i % 3], key_a, f"user{i}") for i in range(60)))
    assert 50 - erin_under_a <= sum(others) <= 50 - erin_under_a + _refilled(50, started)


def _refilled(rpm: int, since: float) -> int:
    """Tokens a bucket of ``rpm`` per minute can have regained since ``since`` (monotonic), rounded up."""
    return math.ceil((time.monotonic() - since) * rpm / 60)
