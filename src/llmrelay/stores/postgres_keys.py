"""Virtual keys in PostgreSQL (``storage.url: postgresql://...``), shared by every gateway instance.

Implements :class:`llmrelay.keys.KeyStore`. The table comes from the schema migrations
(:mod:`llmrelay.stores.migrations`); a revocation is one UPDATE that every instance sees on its
next lookup (the authenticator re-checks within 0.5 s, sooner with Redis's key-change broadcast).

    store = PostgresKeyStore("postgresql://llmrelay@db/llmrelay")
    key, secret = await store.create(KeySpec(name="ci"))
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..clock import Clock, SystemClock
from ..errors import ConfigError
from ..keys import _COLUMNS, KeySpec, VirtualKey, _new_record, _row_to_key

# "user" is a reserved word in PostgreSQL.
_COLS = ", ".join('"user"' if c == "user" else c for c in _COLUMNS)


class PostgresKeyStore:
    def __init__(self, url: str, clock: Clock | None = None, *, max_size: int = 4) -> None:
        self.url = url.replace("postgresql+asyncpg://", "postgresql://")
        self._clock = clock or SystemClock()
        self._max_size = max_size
        self._pool: Any = None
        self._lock = asyncio.Lock()

    async def _p(self) -> Any:
        if self._pool is not None:
            return self._pool
        async with self._lock:
            if self._pool is None:
                try:
                    import asyncpg
                except ImportError:
                    raise ConfigError(
                        "storage.url is postgresql:// but asyncpg is missing; pip install 'llmrelay[postgres]'"
                    ) from None
                try:
                    pool = await asyncpg.create_pool(self.url, min_size=1, max_size=self._max_size, timeout=5)
                except (OSError, asyncpg.PostgresError) as exc:
                    raise ConfigError(f"the key store cannot reach PostgreSQL: {exc}") from exc
                if await pool.fetchval("SELECT to_regclass('virtual_keys')") is None:
                    await pool.close()
                    raise ConfigError("the database has no virtual_keys table yet; run `llmrelay db upgrade`")
                self._pool = pool
        return self._pool

    async def _one(self, where: str, value: str) -> VirtualKey | None:
        pool = await self._p()
        row = await pool.fetchrow(f"SELECT {_COLS} FROM virtual_keys WHERE {where} = $1", value)
        return _row_to_key(tuple(row)) if row is not None else None

    async def create(self, spec: KeySpec) -> tuple[VirtualKey, str]:
        key, secret = _new_record(spec, self._clock.time())
        values = [getattr(key, c) for c in _COLUMNS]
        values[_COLUMNS.index("models")] = ",".join(key.models)
        values[_COLUMNS.index("revoked")] = int(key.revoked)
        placeholders = ", ".join(f"${i}" for i in range(1, len(_COLUMNS) + 1))
        pool = await self._p()
        await pool.execute(f"INSERT INTO virtual_keys ({_COLS}) VALUES ({placeholders})", *values)
        return key, secret

    async def get(self, key_id: str) -> VirtualKey | None:
        return await self._one("id", key_id)

    async def get_by_hash(self, key_hash: str) -> VirtualKey | None:
        return await self._one("key_hash", key_hash)

    async def list(self) -> list[VirtualKey]:
        pool = await self._p()
        rows = await pool.fetch(f"SELECT {_COLS} FROM virtual_keys ORDER BY created_at")
        return [_row_to_key(tuple(r)) for r in rows]

    async def revoke(self, key_id: str) -> bool:
        pool = await self._p()
        status = await pool.execute("UPDATE virtual_keys SET revoked = 1 WHERE id = $1", key_id)
        return bool(status.endswith(" 1"))

    async def ping(self) -> None:
        try:
            pool = await self._p()
            await pool.fetchval("SELECT 1")
        except ConfigError:
            raise
        except Exception as exc:
            raise ConfigError(f"the key store cannot reach PostgreSQL: {exc}") from exc

    async def aclose(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
