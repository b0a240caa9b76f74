"""Following a live recording: a follower that waits is woken by each new event and by the end;
several followers share the wait; an unfollowed recording makes no wake-up object at all."""

from __future__ import annotations

import asyncio

from llmrelay.server.resume import Recording


async def _follow(rec: Recording, after: int = 0) -> list[bytes]:
    return [e async for e in rec.follow(after)]


async def test_followers_get_every_event_then_the_end() -> None:
    rec = Recording(owner="k")
    rec.add(b"data: 1\n\n")
    first, second = asyncio.ensure_future(_follow(rec)), asyncio.ensure_future(_follow(rec, after=1))
    await asyncio.sleep(0)
    assert rec.changed is not None  # made by the waiting followers
    rec.add(b"data: 2\n\ndata: 3\n\n")
    await asyncio.sleep(0)
    rec.add(b"data: 4\n\n")
    await asyncio.sleep(0)
    rec.finish()
    got_first, got_second = await asyncio.wait_for(asyncio.gather(first, second), 5)
    assert got_first == [b"id: %d\ndata: %d\n\n" % (i, i) for i in range(1, 5)]
    assert got_second == got_first[1:]


async def test_an_unfollowed_recording_makes_no_event() -> None:
    rec = Recording(owner=None)
    for i in range(5):
        rec.add(b"data: %d\n\n" % i)
    rec.finish()
    assert rec.changed is None
    assert await _follow(rec, after=3) == [b"id: 4\ndata: 3\n\n", b"id: 5\ndata: 4\n\n"]


async def test_a_dropped_recording_ends_its_follower() -> None:
    rec = Recording(owner=None)
    follower = asyncio.ensure_future(_follow(rec))
    await asyncio.sleep(0)
    rec.add(b"x" * 10 + b"\n\n")
    await asyncio.sleep(0)
    rec.drop()
    rec.finish()
    assert await asyncio.wait_for(follower, 5) == [b"id: 1\n" + b"x" * 10 + b"\n\n"]


async def test_an_evicted_recording_ends_its_waiting_follower() -> None:
    """Eviction drops a live recording without finishing it: its follower must not hang."""
    rec = Recording(owner=None)
    rec.add(b"data: 1\n\n")
    follower = asyncio.ensure_future(_follow(rec))
    await asyncio.sleep(0)
    rec.drop()
    assert await asyncio.wait_for(follower, 5) == [b"id: 1\ndata: 1\n\n"]
