"""One suite for every cache backend: memory and SQLite always, Redis against a real server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from llmrelay.caching.backends import CacheBackend, MemoryBackend, SQLiteBackend, entry_key
from llmrelay.clock import ManualClock

BACKENDS = ["memory", "sqlite", "redis"]


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest, tmp_path: Path, clock: ManualClock) -> AsyncIterator[CacheBackend]:
    kind = request.param
    b: CacheBackend
    if kind == "memory":
        b = MemoryBackend(1000, 1 << 20, clock)
    elif kind == "sqlite":
        b = SQLiteBackend(tmp_path / "cache.db", 1000, 1 << 20, clock)
    else:
        from llmrelay.caching.backends.redis import RedisBackend

        b = RedisBackend(request.getfixturevalue("redis_url"), clock)
        await b.clear()
    try:
        yield b
    finally:
        await b.aclose()


def k(group: str, n: int) -> str:
    return entry_key(group, f"{n:032x}")


async def test_set_get_overwrite(backend: CacheBackend) -> None:
    assert await backend.get(k("g", 1)) is None
    await backend.set(k("g", 1), "g", b"one", 60)
    assert await backend.get(k("g", 1)) == b"one"
    await backend.set(k("g", 1), "g", b"uno", 60)
    assert await backend.get(k("g", 1)) == b"uno"
    assert (await backend.stats()).entries == 1


async def test_entries_expire_on_the_injected_clock(backend: CacheBackend, clock: ManualClock) -> None:
    await backend.set(k("g", 1), "g", b"short", 10)
    await backend.set(k("g", 2), "g", b"long", 100)
    clock.advance(9.9)
    assert await backend.get(k("g", 1)) == b"short"
    clock.advance(0.2)
    assert await backend.get(k("g", 1)) is None
    assert await backend.get(k("g", 2)) == b"long"


async def test_delete_one_key(backend: CacheBackend) -> None:
    await backend.set(k("g", 1), "g", b"a", 60)
    await backend.set(k("g", 2), "g", b"b", 60)
    assert await backend.delete(k("g", 1)) is True
    assert await backend.delete(k("g", 1)) is False
    assert await backend.get(k("g", 1)) is None
    assert await backend.get(k("g", 2)) == b"b"


async def test_clear_by_group_leaves_other_groups(backend: CacheBackend) -> None:
    # "fast" must not clear "fast|x" or "fast*" (a glob character in a group name).
    for group in ("fast", "fast|x", "fast*", "smart"):
        for n in range(3):
            await backend.set(k(group, n), group, group.encode(), 60)
    assert await backend.clear("fast") == 3
    assert await backend.get(k("fast", 0)) is None
    for group in ("fast|x", "fast*", "smart"):
        assert await backend.get(k(group, 0)) == group.encode()
    assert await backend.clear() == 9
    assert (await backend.stats()).entries == 0


async def test_binary_values_round_trip(backend: CacheBackend) -> None:
    value = bytes(range(256)) * 4
    await backend.set(k("g", 7), "g", value, 60)
    assert await backend.get(k("g", 7)) == value
    stats = await backend.stats()
    assert stats.entries == 1 and stats.bytes >= len(value)


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_bounded_by_entries_oldest_first(kind: str, tmp_path: Path, clock: ManualClock) -> None:
    evicted: list[int] = []
    b: CacheBackend = (MemoryBackend(5, 1 << 20, clock, evicted.append) if kind == "memory"
                       else SQLiteBackend(tmp_path / "c.db", 5, 1 << 20, clock, trim_every=1, on_evict=evicted.append))
    for n in range(8):
        clock.advance(1)  # distinct insertion times, so "oldest" is well defined for SQLite
        await b.set(k("g", n), "g", b"v%d" % n, 600)
    assert (await b.stats()).entries == 5
    assert [await b.get(k("g", n)) for n in range(3)] == [None, None, None]
    assert await b.get(k("g", 7)) == b"v7"
    assert sum(evicted) == 3
    await b.aclose()


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_bounded_by_bytes(kind: str, tmp_path: Path, clock: ManualClock) -> None:
    limit = 10_000
    b: CacheBackend = (MemoryBackend(1000, limit, clock) if kind == "memory"
                       else SQLiteBackend(tmp_path / "c.db", 1000, limit, clock, trim_every=1))
    for n in range(20):
        clock.advance(1)
        await b.set(k("g", n), "g", b"x" * 1000, 600)
    stats = await b.stats()
    assert stats.bytes <= limit
    assert 5 <= stats.entries < 20
    assert await b.get(k("g", 19)) is not None
    assert await b.get(k("g", 0)) is None
    await b.aclose()


async def test_memory_lru_keeps_what_is_read(clock: ManualClock) -> None:
    b = MemoryBackend(3, 1 << 20, clock)
    for n in range(3):
        await b.set(k("g", n), "g", b"v", 60)
    await b.get(k("g", 0))  # now most recently used
    await b.set(k("g", 3), "g", b"v", 60)
    assert await b.get(k("g", 0)) == b"v"
    assert await b.get(k("g", 1)) is None


async def test_memory_refuses_a_value_larger_than_the_cache(clock: ManualClock) -> None:
    b = MemoryBackend(10, 1000, clock)
    await b.set(k("g", 1), "g", b"small", 60)
    await b.set(k("g", 2), "g", b"x" * 5000, 60)
    assert await b.get(k("g", 2)) is None
    assert await b.get(k("g", 1)) == b"small"


async def test_sqlite_survives_a_restart(tmp_path: Path, clock: ManualClock) -> None:
    first = SQLiteBackend(tmp_path / "c.db", 100, 1 << 20, clock)
    await first.set(k("g", 1), "g", b"kept", 600)
    await first.aclose()
    second = SQLiteBackend(tmp_path / "c.db", 100, 1 << 20, clock)
    assert await second.get(k("g", 1)) == b"kept"
    await second.aclose()
