"""Virtual keys: who may call the gateway, with which models, limits and budget.

A virtual key is a random 32-byte token shown once (prefix ``sk-relay-``); only its SHA-256 is
stored. A plain hash is right here because the secret has 256 bits of entropy: nothing to brute
force, and a lookup stays one indexed read. Stores are chosen by URL scheme behind the small
:class:`KeyStore` protocol, so PostgreSQL can be added as one more class:

    >>> import asyncio
    >>> store = open_key_store("memory://")
    >>> key, secret = asyncio.run(store.create(KeySpec(name="ci", models=("fast",))))
    >>> secret.startswith("sk-relay-"), asyncio.run(store.get_by_hash(hash_key(secret))) == key
    (True, True)

:class:`Authenticator` turns a presented credential into an :class:`Identity`, caching lookups
briefly (``recheck_s``) so the hot path does no database read, while a revocation made in this
process takes effect at once and one made by another worker within ``recheck_s``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
import secrets
import sqlite3
import threading
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, Protocol

from .clock import Clock, SystemClock
from .errors import AuthenticationError, ConfigError, InvalidRequestError
from .stores.urls import sqlite_path

KEY_PREFIX = "sk-relay-"
# ctx.notes entry an edge leaves after authenticating: (id(ctx.credential), Identity); the identity
# layer takes it instead of authenticating the same credential object a second time.
EDGE_IDENTITY = "keys.edge_identity"
log = logging.getLogger("llmrelay.keys")
Period = Literal["day", "week", "month", "total"]
PERIODS: tuple[str, ...] = ("day", "week", "month", "total")
PRIORITIES: tuple[str, ...] = ("high", "normal", "low")


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", errors="surrogatepass")).hexdigest()


@dataclass(frozen=True, slots=True)
class KeySpec:
    """What a caller asks for when creating a key (validated by :meth:`validate`)."""

    name: str
    user: str | None = None
    team: str | None = None
    models: tuple[str, ...] = ()
    budget_usd: float | None = None
    budget_period: str | None = None
    rpm: int | None = None
    tpm: int | None = None
    policy: str | None = None
    priority: str = "normal"
    expires_at: float | None = None

    def validate(self) -> KeySpec:
        problems = []
        if not self.name or not self.name.strip():
            problems.append("name must be a non-empty string")
        if self.budget_usd is not None and self.budget_usd <= 0:
            problems.append("budget_usd must be > 0")
        if self.budget_period is not None and self.budget_period not in PERIODS:
            problems.append(f"budget_period must be one of {', '.join(PERIODS)}")
        for f in ("rpm", "tpm"):
            v = getattr(self, f)
            if v is not None and v <= 0:
                problems.append(f"{f} must be a positive integer")
        if self.priority not in PRIORITIES:
            problems.append(f"priority must be one of {', '.join(PRIORITIES)}")
        if problems:
            raise InvalidRequestError("invalid key: " + "; ".join(problems))
        period = self.budget_period or ("month" if self.budget_usd is not None else None)
        return replace(self, budget_period=period)


@dataclass(frozen=True, slots=True)
class VirtualKey:
    id: str
    name: str
    key_hash: str = field(repr=False)
    # The first characters of the secret, to recognise a key in a listing without revealing it.
    prefix: str = ""
    user: str | None = None
    team: str | None = None
    models: tuple[str, ...] = ()
    budget_usd: float | None = None
    budget_period: str | None = None
    rpm: int | None = None
    tpm: int | None = None
    policy: str | None = None
    priority: str = "normal"
    expires_at: float | None = None
    revoked: bool = False
    created_at: float = 0.0

    def allows(self, model: str) -> bool:
        return not self.models or model in self.models

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def public(self) -> dict[str, Any]:
        """The key's record as shown to admins: everything but the hash."""
        d = asdict(self)
        d.pop("key_hash")
        d["models"] = list(self.models)
        return d


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNIT_S = {"": 86400.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def parse_duration(text: str) -> float:
    """``30d``, ``12h``, ``90m``, ``2w`` (a bare number means days) -> seconds."""
    m = _DURATION.match(text)
    if not m:
        raise InvalidRequestError(f"cannot read the duration {text!r}; use e.g. 30d, 12h, 90m or 2w")
    return float(m.group(1)) * _UNIT_S[m.group(2)]


# ------------------------------------------------------------------------------------- stores


class KeyStore(Protocol):
    """Where keys live. Implementations: :class:`MemoryKeyStore`, :class:`SQLiteKeyStore`."""

    async def create(self, spec: KeySpec) -> tuple[VirtualKey, str]:
        """Store a new key; returns its record and the secret (shown once, never stored)."""
        ...

    async def get(self, key_id: str) -> VirtualKey | None: ...

    async def get_by_hash(self, key_hash: str) -> VirtualKey | None: ...

    async def list(self) -> list[VirtualKey]: ...

    async def revoke(self, key_id: str) -> bool:
        """Mark a key revoked; False when there is no such key."""
        ...

    async def ping(self) -> None:
        """Raise if the store cannot be reached."""
        ...

    async def aclose(self) -> None: ...


def _new_record(spec: KeySpec, now: float) -> tuple[VirtualKey, str]:
    spec = spec.validate()
    secret = generate_key()
    key = VirtualKey(
        id="key_" + secrets.token_hex(8), name=spec.name.strip(), key_hash=hash_key(secret),
        prefix=secret[: len(KEY_PREFIX) + 4], user=spec.user, team=spec.team, models=tuple(spec.models),
        budget_usd=spec.budget_usd, budget_period=spec.budget_period, rpm=spec.rpm, tpm=spec.tpm,
        policy=spec.policy, priority=spec.priority, expires_at=spec.expires_at, created_at=now,
    )
    return key, secret


class MemoryKeyStore:
    """Keys in a dict: for tests and for a gateway that needs no persistence."""

    def __init__(self, clock: Clock | None = None) -> None:
        self._clock = clock or SystemClock()
        self._by_id: dict[str, VirtualKey] = {}

    async def create(self, spec: KeySpec) -> tuple[VirtualKey, str]:
        key, secret = _new_record(spec, self._clock.time())
        self._by_id[key.id] = key
        return key, secret

    async def get(self, key_id: str) -> VirtualKey | None:
        return self._by_id.get(key_id)

    async def get_by_hash(self, key_hash: str) -> VirtualKey | None:
        return next((k for k in self._by_id.values() if k.key_hash == key_hash), None)

    async def list(self) -> list[VirtualKey]:
        return sorted(self._by_id.values(), key=lambda k: k.created_at)

    async def revoke(self, key_id: str) -> bool:
        key = self._by_id.get(key_id)
        if key is None:
            return False
        self._by_id[key_id] = replace(key, revoked=True)
        return True

    async def erase_user(self, user: str) -> int:
        """Unlink ``user`` from their keys (GDPR erasure); the keys themselves keep working."""
        mine = [k for k in self._by_id.values() if k.user == user]
        for k in mine:
            self._by_id[k.id] = replace(k, user=None)
        return len(mine)

    async def ping(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


_COLUMNS = ("id", "name", "key_hash", "prefix", "user", "team", "models", "budget_usd", "budget_period",
            "rpm", "tpm", "policy", "priority", "expires_at", "revoked", "created_at")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS virtual_keys (
  id TEXT PRIMARY KEY, name TEXT NOT NULL, key_hash TEXT NOT NULL UNIQUE, prefix TEXT NOT NULL,
  user TEXT, team TEXT, models TEXT NOT NULL DEFAULT '', budget_usd REAL, budget_period TEXT,
  rpm INTEGER, tpm INTEGER, policy TEXT, priority TEXT NOT NULL DEFAULT 'normal', expires_at REAL,
  revoked INTEGER NOT NULL DEFAULT 0, created_at REAL NOT NULL)
"""


class SQLiteKeyStore:
    """Keys in a SQLite file (the default). Reads are single indexed lookups, and the
    :class:`Authenticator` caches them, so they run inline rather than in a thread."""

    def __init__(self, path: str, clock: Clock | None = None) -> None:
        self.path = path
        self._clock = clock or SystemClock()
        self._conn: sqlite3.Connection | None = None
        # One connection shared by the loop thread and CLI calls; sqlite3 needs a lock for that.
        self._lock = threading.Lock()

    def _db(self) -> sqlite3.Connection:
        # Opened on first use, so a library user who never touches keys never creates the file.
        if self._conn is None:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=5.0)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(_SCHEMA)
            self._conn = conn
        return self._conn

    def _one(self, sql: str, args: tuple[Any, ...]) -> VirtualKey | None:
        with self._lock:
            row = self._db().execute(sql, args).fetchone()
        return _row_to_key(row) if row else None

    async def create(self, spec: KeySpec) -> tuple[VirtualKey, str]:
        key, secret = _new_record(spec, self._clock.time())
        values = [getattr(key, c) for c in _COLUMNS]
        values[_COLUMNS.index("models")] = ",".join(key.models)
        values[_COLUMNS.index("revoked")] = int(key.revoked)
        with self._lock:
            self._db().execute(
                f"INSERT INTO virtual_keys ({','.join(_COLUMNS)}) VALUES ({','.join('?' * len(_COLUMNS))})",
                values,
            )
        return key, secret

    async def get(self, key_id: str) -> VirtualKey | None:
        return self._one(f"SELECT {','.join(_COLUMNS)} FROM virtual_keys WHERE id = ?", (key_id,))

    async def get_by_hash(self, key_hash: str) -> VirtualKey | None:
        return self._one(f"SELECT {','.join(_COLUMNS)} FROM virtual_keys WHERE key_hash = ?", (key_hash,))

    async def list(self) -> list[VirtualKey]:
        with self._lock:
            rows = self._db().execute(
                f"SELECT {','.join(_COLUMNS)} FROM virtual_keys ORDER BY created_at"
            ).fetchall()
        return [_row_to_key(r) for r in rows]

    async def revoke(self, key_id: str) -> bool:
        with self._lock:
            cur = self._db().execute("UPDATE virtual_keys SET revoked = 1 WHERE id = ?", (key_id,))
        return cur.rowcount > 0

    async def erase_user(self, user: str) -> int:
        """Unlink ``user`` from their keys (GDPR erasure); the keys themselves keep working."""
        with self._lock:
            cur = self._db().execute("UPDATE virtual_keys SET user = NULL WHERE user = ?", (user,))
        return int(cur.rowcount)

    async def ping(self) -> None:
        try:
            with self._lock:
                self._db().execute("SELECT 1").fetchone()
        except sqlite3.Error as exc:
            raise ConfigError(f"the key store at {self.path} cannot be used: {exc}") from exc

    async def aclose(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def _row_to_key(row: tuple[Any, ...]) -> VirtualKey:
    d = dict(zip(_COLUMNS, row, strict=True))
    d["models"] = tuple(m for m in (d["models"] or "").split(",") if m)
    d["revoked"] = bool(d["revoked"])
    return VirtualKey(**d)


def open_key_store(url: str, clock: Clock | None = None) -> KeyStore:
    """The key store for a storage URL: ``sqlite:///path.db``, ``sqlite://:memory:``, ``memory://``."""
    scheme, sep, _ = url.partition("://")
    if not sep:
        raise ConfigError(f"storage.url {url!r} is not a URL; use e.g. sqlite:///llmrelay.db")
    if scheme == "memory":
        return MemoryKeyStore(clock)
    path = sqlite_path(url)
    if path is not None:
        return SQLiteKeyStore(path, clock)
    if scheme in ("postgresql", "postgres"):
        from .stores.postgres_keys import PostgresKeyStore

        return PostgresKeyStore(url, clock)
    raise ConfigError(
        f"no key store for {scheme}:// yet (storage.url {url!r}); use sqlite:/// or memory://"
    )


# ------------------------------------------------------------------------------ authentication


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a credential belongs to: the admin (master key), a virtual key, or an open-mode caller."""

    key: VirtualKey | None = None
    is_admin: bool = False


ANONYMOUS = Identity()
ADMIN = Identity(is_admin=True)


class Authenticator:
    """Checks credentials against the master key and the key store, with a short lookup cache."""

    def __init__(self, store: KeyStore, master_key: str | None, *, clock: Clock | None = None,
                 recheck_s: float = 0.5) -> None:
        self.store = store
        self.master_key = master_key or None
        self.clock = clock or SystemClock()
        self.recheck_s = recheck_s
        # key hash -> (record or None, monotonic time it was read); bounded by _MAX_CACHED.
        self._cache: dict[str, tuple[VirtualKey | None, float]] = {}
        # Background re-reads under way, by key hash (at most one each); see lookup.
        self._refreshing: dict[str, asyncio.Task[None]] = {}
        # Bumped by forget(): a read that started before it is not cached.
        self._generation = 0
        # presented secret -> its hash, so a client that sends the same key on every request is
        # hashed once. Memory only (never logged or stored); bounded by _MAX_HASHED.
        self._hashes: dict[str, str] = {}
        # Told about every create/revoke here, to tell other instances (llmrelay.shared_state.fleet).
        self.on_change: Callable[[str | None], Awaitable[None]] | None = None

    @property
    def open(self) -> bool:
        """No master key: any credential (or none) is accepted."""
        return self.master_key is None

    async def lookup(self, secret: str) -> VirtualKey | None:
        h = self._hashes.get(secret)
        if h is None:
            if len(self._hashes) >= _MAX_HASHED:
                self._hashes.clear()
            h = self._hashes[secret] = hash_key(secret)
        now = self.clock.monotonic()
        hit = self._cache.get(h)
        if hit is not None:
            age = now - hit[1]
            if age < self.recheck_s:
                # Past half its life a used entry is re-read in the background, so a key in steady
                # use is never read on a request's path; an entry is still never served older than
                # recheck_s (a slow or failed refresh leaves the read to the request, as before).
                if age >= self.recheck_s / 2 and h not in self._refreshing:
                    self._refresh_soon(h)
                return hit[0]
        return await self._read(h, now)

    async def _read(self, h: str, now: float) -> VirtualKey | None:
        """Read a key from the store; cached as of ``now`` (taken before the read, so an entry's age
        never understates how old its record may be) unless a ``forget`` happened meanwhile."""
        generation = self._generation
        key = await self.store.get_by_hash(h)
        if generation == self._generation:  # else this read may predate a revocation: not cached
            if len(self._cache) >= _MAX_CACHED:
                self._cache.clear()
            self._cache[h] = (key, now)
        return key

    def _refresh_soon(self, h: str) -> None:
        task = asyncio.get_running_loop().create_task(self._refresh(h))
        self._refreshing[h] = task
        task.add_done_callback(lambda _: self._refreshing.pop(h, None))

    async def _refresh(self, h: str) -> None:
        try:
            await self._read(h, self.clock.monotonic())
        except Exception:  # the store is down: the request that finds the entry due reads (and fails) itself
            log.debug("background refresh of a key failed", exc_info=True)

    async def aclose(self) -> None:
        """Wait for background refreshes (a shutdown must not close the store under one)."""
        if self._refreshing:
            await asyncio.gather(*list(self._refreshing.values()), return_exceptions=True)

    async def authenticate(self, credential: str | None) -> Identity:
        """The identity for a credential; raises AuthenticationError when it is refused."""
        if credential and self.master_key and hmac.compare_digest(credential, self.master_key):
            return ADMIN
        key = await self.lookup(credential) if credential and credential.startswith(KEY_PREFIX) else None
        if key is not None:
            if key.revoked:
                raise AuthenticationError(f"the API key {key.prefix}... has been revoked")
            if key.expired(self.clock.time()):
                raise AuthenticationError(f"the API key {key.prefix}... has expired; ask for a new one")
            return Identity(key=key)
        if self.open:
            return ANONYMOUS
        if not credential:
            raise AuthenticationError(
                "no API key given; send it as 'Authorization: Bearer KEY' or 'x-api-key: KEY'"
            )
        raise AuthenticationError("invalid API key; check the key, or create one with `llmrelay keys create`")

    def forget(self, key_id: str | None = None) -> None:
        """Drop cached lookups (after a revocation or creation, so it takes effect at once)."""
        self._generation += 1
        self._cache.clear()

    async def create(self, spec: KeySpec) -> tuple[VirtualKey, str]:
        key, secret = await self.store.create(spec)
        self.forget()
        if self.on_change is not None:
            await self.on_change(key.id)
        return key, secret

    async def revoke(self, key_id: str) -> bool:
        ok = await self.store.revoke(key_id)
        self.forget(key_id)
        if ok and self.on_change is not None:
            await self.on_change(key_id)
        return ok


_MAX_CACHED = 100_000
# Few: a gateway sees one secret per client; random guesses must not grow it (each entry ~200 B).
_MAX_HASHED = 10_000


def key_authenticator(services: Any) -> Authenticator:
    """The authenticator for a settings generation. The store (and the open SQLite connection)
    is kept in ``services.state`` by URL so it outlives reloads; the master key follows the settings."""
    settings = services.settings
    url = settings.storage.url
    store = services.state.get(("key_store", url))
    if store is None:
        store = services.state[("key_store", url)] = open_key_store(url, services.clock)
    auth = Authenticator(store, settings.server.master_key, clock=services.clock)
    services.on_close.append(auth.aclose)
    return auth


def register_key_privacy(services: Any) -> None:
    """Add the key store's GDPR hooks to ``services.privacy``: export lists the user's keys (never
    secrets or hashes); erase unlinks the user from them (``user`` becomes null)."""
    auth: Authenticator | None = services.keys
    if services.privacy is None or auth is None:
        return

    async def export(user: str) -> dict[str, Any]:
        return {"keys": [k.public() for k in await auth.store.list() if k.user == user]}

    async def erase(user: str) -> dict[str, Any]:
        erase_user = getattr(auth.store, "erase_user", None)
        n = await (erase_user(user) if erase_user is not None else _erase_user_postgres(auth.store, user))
        auth.forget()
        return {"unlinked_keys": n}

    services.privacy.register("keys", export=export, erase=erase)


async def _erase_user_postgres(store: Any, user: str) -> int:
    # The PostgreSQL store (llmrelay.stores.postgres_keys) has no erase_user method yet; its pool
    # runs the same UPDATE ("user" is a reserved word there).
    pool_of = getattr(store, "_p", None)
    if pool_of is None:
        raise ConfigError(f"the key store {type(store).__name__} cannot erase users")
    pool = await pool_of()
    status = await pool.execute('UPDATE virtual_keys SET "user" = NULL WHERE "user" = $1', user)
    return int(str(status).rsplit(" ", 1)[-1])
