"""Schema migrations on SQLite (always) and PostgreSQL (real server): status, upgrade, adoption of
an old database, refusal of a newer one, the start-up check and the db CLI."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from llmrelay.cli import main
from llmrelay.errors import ConfigError
from llmrelay.keys import KeySpec, SQLiteKeyStore
from llmrelay.relay import Relay
from llmrelay.stores.migrate import SchemaTooNewError, schema_status, upgrade
from llmrelay.stores.migrations import LATEST, MIGRATIONS
from llmrelay.stores.startup import ensure_schema


async def test_sqlite_upgrade_from_empty_then_idempotent(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    assert (await schema_status(url)).pending == tuple(m.version for m in MIGRATIONS)
    assert await upgrade(url) == [m.version for m in MIGRATIONS]
    assert await upgrade(url) == []
    st = await schema_status(url)
    assert (st.current, st.pending) == (LATEST, ())
    tables = {r[0] for r in sqlite3.connect(tmp_path / "a.db").execute("SELECT name FROM sqlite_master")}
    assert {"usage_ledger", "usage_daily", "virtual_keys", "audit_log", "llmrelay_cache"} <= tables


async def test_a_database_made_by_the_stores_is_adopted(tmp_path: Path) -> None:
    store = SQLiteKeyStore(str(tmp_path / "old.db"))
    key, _ = await store.create(KeySpec(name="kept"))
    await store.aclose()
    url = f"sqlite:///{tmp_path / 'old.db'}"
    assert await upgrade(url) == [m.version for m in MIGRATIONS]
    store = SQLiteKeyStore(str(tmp_path / "old.db"))
    assert (await store.get(key.id)) == key
    await store.aclose()


async def test_a_newer_schema_refuses_to_start(tmp_path: Path) -> None:
    db = tmp_path / "new.db"
    url = f"sqlite:///{db}"
    await upgrade(url)
    sqlite3.connect(db, isolation_level=None).execute(
        "INSERT INTO llmrelay_schema_version VALUES (?, 'from the future', 0)", (LATEST + 1,))
    with pytest.raises(SchemaTooNewError, match="newer than this llmrelay knows"):
        await ensure_schema(url, auto_migrate=True)
    relay = Relay({"storage": {"url": url}, "safety": {"level": "off"}})
    with pytest.raises(ConfigError, match=f"schema version {LATEST + 1}"):
        await relay.start()
    await relay.aclose()


def test_db_cli_reports_a_newer_schema(tmp_path: Path) -> None:
    import asyncio

    db = tmp_path / "new.db"
    url = f"sqlite:///{db}"
    asyncio.run(upgrade(url))
    sqlite3.connect(db, isolation_level=None).execute(
        "INSERT INTO llmrelay_schema_version VALUES (?, 'from the future', 0)", (LATEST + 1,))
    cfg = str(_config(tmp_path, url))
    status = CliRunner().invoke(main, ["db", "status", "--config", cfg])
    assert status.exit_code == 2 and "newer" in status.output
    up = CliRunner().invoke(main, ["db", "upgrade", "--config", cfg])
    assert up.exit_code == 2 and "newer than this llmrelay knows" in up.output


async def test_relay_start_upgrades_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    async with Relay({"storage": {"url": url}, "safety": {"level": "off"}}):
        assert (await schema_status(url)).current == LATEST


def _config(tmp_path: Path, url: str) -> Path:
    p = tmp_path / "llmrelay.yaml"
    p.write_text(f"storage: {{url: '{url}'}}\n")
    return p


def test_db_cli_status_and_upgrade(tmp_path: Path) -> None:
    cfg = _config(tmp_path, f"sqlite:///{tmp_path / 'c.db'}")
    runner = CliRunner()
    before = runner.invoke(main, ["db", "status", "--config", str(cfg), "--json"])
    assert before.exit_code == 1 and '"state": "pending"' in before.output.replace(": ", ": ")
    up = runner.invoke(main, ["db", "upgrade", "--config", str(cfg)])
    assert up.exit_code == 0 and f"applied {LATEST}" in up.output
    after = runner.invoke(main, ["db", "status", "--config", str(cfg)])
    assert after.exit_code == 0 and "up to date" in after.output


@pytest.mark.postgres
async def test_postgres_auto_migrate_off_asks_for_upgrade_then_works(postgres_url: str) -> None:
    with pytest.raises(ConfigError, match="llmrelay db upgrade"):
        await ensure_schema(postgres_url, auto_migrate=False)
    assert await upgrade(postgres_url) == [m.version for m in MIGRATIONS]
    assert await ensure_schema(postgres_url, auto_migrate=False) == []
    from llmrelay.stores.postgres_keys import PostgresKeyStore

    store = PostgresKeyStore(postgres_url)
    key, secret = await store.create(KeySpec(name="pg", user="u", models=("a", "b"), rpm=5))
    from llmrelay.keys import hash_key

    assert await store.get_by_hash(hash_key(secret)) == key
    assert await store.revoke(key.id) and (await store.get(key.id)).revoked  # type: ignore[union-attr]
    assert not await store.revoke("key_missing")
    await store.aclose()
