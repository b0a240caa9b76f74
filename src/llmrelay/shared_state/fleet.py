"""Fleet-wide facts kept in Redis: which config version each instance runs, and key changes.

* Config version: a short hash of the settings. Each instance writes it under
  ``llmrelay:fleet:config:{instance}`` with a TTL and refreshes it, so ``/health/ready`` can show
  the versions the fleet is running (two versions during a rolling change is normal; more is not).
* Key revocation broadcast: a revoke (or create) on one instance publishes on
  ``llmrelay:keys:changed``; every instance drops its cached key lookups at once. Without Redis,
  or while it is down, the authenticator's short re-check (0.5 s) still bounds the delay.

    fleet = attach_fleet(services, shared)          # from llmrelay.shared_state.wire
    await fleet.versions()                           # {"3f2a9c1e0b7d": 4}
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import secrets
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from .client import SharedRedis
from .redis_health import RedisUnavailable, guarded

log = logging.getLogger("llmrelay.fleet")

CHANNEL = "llmrelay:keys:changed"
CONFIG_PREFIX = "llmrelay:fleet:config:"
HEARTBEAT_S = 5.0
_SLOT = "shared.fleet"


def config_version(settings: Any) -> str:
    """A short, stable hash of the effective settings (secrets included, so a rotated key shows)."""
    return hashlib.sha256(settings.model_dump_json().encode()).hexdigest()[:12]


class Fleet:
    """This process's view of the fleet; one per process, handed over across reloads."""

    def __init__(self, shared: SharedRedis | None) -> None:
        self.shared = shared
        self.instance = secrets.token_hex(6)
        self.version = ""
        self.users = 0
        self._authenticators: weakref.WeakSet[Any] = weakref.WeakSet()
        self._tasks: list[asyncio.Task[None]] = []

    def adopt(self, services: Any) -> None:
        """Follow a new settings generation: its version and its authenticator."""
        self.version = config_version(services.settings)
        auth = services.keys
        if auth is not None:
            self._authenticators.add(auth)
            if self.shared is not None:
                auth.on_change = self.key_changed

    def forget_keys(self) -> None:
        for auth in list(self._authenticators):
            auth.forget()

    async def key_changed(self, key_id: str | None) -> None:
        """Tell the other instances (best effort: their short re-check covers a lost message)."""
        if self.shared is None:
            return
        client = self.shared.client
        with contextlib.suppress(RedisUnavailable):
            await guarded(self.shared.health, lambda: client.publish(CHANNEL, key_id or ""))

    async def versions(self) -> dict[str, int]:
        """Config versions reported by live instances, with how many run each."""
        if self.shared is None:
            return {self.version: 1}
        client = self.shared.client

        async def scan() -> dict[str, int]:
            out: dict[str, int] = {}
            async for k in client.scan_iter(match=CONFIG_PREFIX + "*", count=200):
                v = await client.get(k)
                if v is not None:
                    out[v.decode()] = out.get(v.decode(), 0) + 1
            return out

        try:
            return await guarded(self.shared.health, scan)  # type: ignore[no-any-return]
        except RedisUnavailable:
            return {self.version: 1}

    async def start(self) -> None:
        if self.shared is None or self._tasks:
            return
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._heartbeat()), loop.create_task(self._listen())]

    async def _heartbeat(self) -> None:
        assert self.shared is not None
        client = self.shared.client
        while True:
            with contextlib.suppress(RedisUnavailable):
                await guarded(self.shared.health, lambda: client.set(
                    CONFIG_PREFIX + self.instance, self.version, ex=int(HEARTBEAT_S * 3)))
            await asyncio.sleep(HEARTBEAT_S)

    async def _listen(self) -> None:
        """Subscribe to key changes; resubscribe after Redis comes back."""
        assert self.shared is not None
        while True:
            pubsub = self.shared.client.pubsub()
            try:
                await pubsub.subscribe(CHANNEL)
                while True:
                    msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if msg is not None:
                        self.forget_keys()
            except asyncio.CancelledError:
                raise
            except Exception:
                # Down: the health circuit logs it; a lookup made meanwhile re-checks within 0.5 s.
                self.forget_keys()
                await asyncio.sleep(1.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    async def aclose(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks = []
        if self.shared is not None:
            client = self.shared.client
            with contextlib.suppress(RedisUnavailable):
                await guarded(self.shared.health, lambda: client.delete(CONFIG_PREFIX + self.instance))


def attach_fleet(services: Any, shared: SharedRedis | None) -> Fleet:
    """The process's fleet view, adopted by this settings generation (stopped with the last one)."""
    fleet: Fleet | None = services.state.get(_SLOT)
    if fleet is None or fleet.shared is not shared:
        fleet = services.state[_SLOT] = Fleet(shared)
    fleet.users += 1
    fleet.adopt(services)
    services.on_start.append(fleet.start)
    services.on_close.append(_closer(services, fleet))
    return fleet


def fleet_of(services: Any) -> Fleet | None:
    return services.state.get(_SLOT)  # type: ignore[no-any-return]


def _closer(services: Any, fleet: Fleet) -> Callable[[], Awaitable[None]]:
    async def close() -> None:
        fleet.users -= 1
        if fleet.users <= 0 or services.state.get(_SLOT) is not fleet:
            await fleet.aclose()

    return close
