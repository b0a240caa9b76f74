"""The key cache's background refresh (a key in steady use is never read on a request's path, an
entry is never served older than ``recheck_s``) and the identity layer taking the edge's check."""

from __future__ import annotations

import asyncio

import pytest

from llmrelay.clock import ManualClock
from llmrelay.context import RequestContext
from llmrelay.errors import AuthenticationError
from llmrelay.keys import (
    EDGE_IDENTITY,
    Authenticator,
    Identity,
    KeySpec,
    MemoryKeyStore,
    VirtualKey,
    hash_key,
)
from llmrelay.layers.identity import identify
from llmrelay.server.auth import authenticate
from llmrelay.types import ChatRequest, Message


class CountingStore(MemoryKeyStore):
    """The in-memory store, counting reads; ``gate`` (when set) holds a read until it is set."""

    def __init__(self, clock: ManualClock) -> None:
        super().__init__(clock)
        self.reads = 0
        self.gate: asyncio.Event | None = None
        self.fail = False

    async def get_by_hash(self, key_hash: str) -> VirtualKey | None:
        self.reads += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            raise ConnectionError("store down")
        return await super().get_by_hash(key_hash)


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def _setup() -> tuple[ManualClock, CountingStore, Authenticator, str]:
    clock = ManualClock()
    store = CountingStore(clock)
    auth = Authenticator(store, "m", clock=clock, recheck_s=0.5)
    _, secret = await store.create(KeySpec(name="k"))
    return clock, store, auth, secret


async def test_a_key_in_steady_use_is_refreshed_in_the_background() -> None:
    clock, store, auth, secret = await _setup()
    await auth.authenticate(secret)
    assert store.reads == 1
    for _ in range(20):  # 2 s of traffic, a request every 0.1 s
        clock.advance(0.1)
        store.gate = asyncio.Event()  # any read now would hold the request that makes it
        who = await asyncio.wait_for(auth.authenticate(secret), 1)  # answered from the cache
        assert who.key is not None
        store.gate.set()
        await _settle()
    # Re-read about every recheck_s / 2, never by a request.
    assert 6 <= store.reads <= 11


async def test_a_revocation_elsewhere_is_seen_within_recheck_s_under_steady_use() -> None:
    clock, store, auth, secret = await _setup()
    key = await store.get_by_hash(hash_key(secret))
    assert key is not None
    await auth.authenticate(secret)
    await store.revoke(key.id)  # another worker's revocation: this authenticator is not told
    refused_at = None
    for step in range(1, 20):
        clock.advance(0.05)
        try:
            await auth.authenticate(secret)
        except AuthenticationError:
            refused_at = step * 0.05
            break
        await _settle()
    assert refused_at is not None and refused_at <= 0.5 + 1e-9


async def test_a_slow_refresh_never_lets_an_entry_outlive_recheck_s() -> None:
    clock, store, auth, secret = await _setup()
    await auth.authenticate(secret)
    clock.advance(0.3)
    store.gate = asyncio.Event()
    await auth.authenticate(secret)  # starts a background refresh, held by the gate
    await _settle()
    assert store.reads == 2
    clock.advance(0.3)  # 0.6 s old: due, so the request reads itself
    pending = asyncio.ensure_future(auth.authenticate(secret))
    await _settle()
    assert store.reads == 3 and not pending.done()  # it waits for its own read
    store.gate.set()
    assert (await pending).key is not None
    await auth.aclose()


async def test_a_failed_refresh_is_quiet_and_the_due_request_reads_itself() -> None:
    clock, store, auth, secret = await _setup()
    await auth.authenticate(secret)
    store.fail = True
    clock.advance(0.3)
    assert (await auth.authenticate(secret)).key is not None  # cached; the refresh fails quietly
    await _settle()
    clock.advance(0.3)
    with pytest.raises(ConnectionError):
        await auth.authenticate(secret)


async def test_a_refresh_that_started_before_forget_is_not_cached() -> None:
    clock, store, auth, secret = await _setup()
    await auth.authenticate(secret)
    clock.advance(0.3)
    store.gate = asyncio.Event()
    await auth.authenticate(secret)
    await _settle()
    auth.forget()  # e.g. a revocation made here while the read was under way
    store.gate.set()
    await auth.aclose()
    store.gate = None
    reads = store.reads
    await auth.authenticate(secret)
    assert store.reads == reads + 1  # not answered from the stale read


async def test_identity_takes_the_edges_check_of_the_same_credential() -> None:
    clock, store, auth, secret = await _setup()
    ctx = RequestContext(protocol="openai", credential=secret)
    await authenticate(auth, ctx)
    reads = store.reads
    clock.advance(10)  # the cache entry is stale: a second check would read the store
    await identify(auth, ChatRequest(model="m", messages=(Message.user("hi"),)), ctx)
    assert store.reads == reads and ctx.key is not None and ctx.credential is None
    assert EDGE_IDENTITY not in ctx.notes


async def test_identity_checks_a_credential_the_edge_did_not() -> None:
    _, _, auth, _ = await _setup()
    ctx = RequestContext(protocol="openai", credential="sk-relay-" + "0" * 43)
    ctx.notes[EDGE_IDENTITY] = (id("another credential object"), Identity(is_admin=True))
    with pytest.raises(AuthenticationError):
        await identify(auth, ChatRequest(model="m", messages=(Message.user("hi"),)), ctx)
    assert not ctx.is_admin
