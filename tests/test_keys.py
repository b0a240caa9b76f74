"""Virtual keys: hashing, both stores (one suite for every backend), the cached authenticator."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from llmrelay.cli import main
from llmrelay.clock import ManualClock
from llmrelay.errors import AuthenticationError, ConfigError, InvalidRequestError
from llmrelay.keys import (
    KEY_PREFIX,
    Authenticator,
    KeySpec,
    KeyStore,
    MemoryKeyStore,
    SQLiteKeyStore,
    hash_key,
    open_key_store,
    parse_duration,
)


@pytest.fixture(params=["memory", "sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[KeyStore]:
    s = open_key_store("memory://" if request.param == "memory" else f"sqlite:///{tmp_path}/keys.db")
    yield s
    await s.aclose()


async def test_create_get_list_revoke(store: KeyStore) -> None:
    key, secret = await store.create(KeySpec(name="ci", user="u", team="t", models=("a", "b"), budget_usd=3.5,
                                             rpm=10, tpm=1000, policy="strict", priority="high", expires_at=9e9))
    assert secret.startswith(KEY_PREFIX) and len(secret) > 40
    assert key.key_hash == hash_key(secret) != secret
    assert secret not in repr(key) and "key_hash" not in key.public()
    assert await store.get(key.id) == key == await store.get_by_hash(hash_key(secret))
    assert (key.models, key.budget_period, key.priority) == (("a", "b"), "month", "high")
    other, _ = await store.create(KeySpec(name="two"))
    assert [k.id for k in await store.list()] == [key.id, other.id]
    assert await store.revoke(key.id) is True
    assert (await store.get(key.id)).revoked is True  # type: ignore[union-attr]
    assert await store.revoke("key_missing") is False
    assert await store.get_by_hash(hash_key("sk-relay-unknown")) is None


async def test_sqlite_persists_across_reopen(tmp_path: Path) -> None:
    path = str(tmp_path / "k.db")
    first = SQLiteKeyStore(path)
    key, secret = await first.create(KeySpec(name="p", models=("x",)))
    await first.aclose()
    again = SQLiteKeyStore(path)
    assert await again.get_by_hash(hash_key(secret)) == key
    await again.aclose()


@pytest.mark.parametrize("spec", [
    KeySpec(name=" "), KeySpec(name="x", budget_usd=-1), KeySpec(name="x", budget_period="year"),
    KeySpec(name="x", rpm=0), KeySpec(name="x", priority="urgent"),
])
async def test_invalid_specs_refused(spec: KeySpec) -> None:
    with pytest.raises(InvalidRequestError):
        await MemoryKeyStore().create(spec)


def test_durations_and_urls() -> None:
    assert parse_duration("30d") == 30 * 86400 and parse_duration("12h") == 43200 and parse_duration("2") == 172800
    with pytest.raises(InvalidRequestError):
        parse_duration("soon")
    assert isinstance(open_key_store("sqlite://:memory:"), SQLiteKeyStore)
    with pytest.raises(ConfigError):
        open_key_store("mongodb://x")


async def test_authenticator_master_open_and_refusals() -> None:
    clock = ManualClock()
    auth = Authenticator(MemoryKeyStore(clock), "master-key", clock=clock)
    assert (await auth.authenticate("master-key")).is_admin
    for bad in (None, "", "wrong", "sk-relay-unknown"):
        with pytest.raises(AuthenticationError):
            await auth.authenticate(bad)
    key, secret = await auth.create(KeySpec(name="k", expires_at=clock.time() + 60))
    assert (await auth.authenticate(secret)).key == key
    clock.advance(61)
    with pytest.raises(AuthenticationError, match="expired"):
        await auth.authenticate(secret)
    open_auth = Authenticator(MemoryKeyStore(), None)
    assert open_auth.open and (await open_auth.authenticate(None)).key is None
    assert not (await open_auth.authenticate("anything")).is_admin


async def test_revocation_at_once_here_and_within_recheck_elsewhere() -> None:
    clock = ManualClock()
    store = MemoryKeyStore(clock)
    here = Authenticator(store, "m", clock=clock, recheck_s=0.5)
    elsewhere = Authenticator(store, "m", clock=clock, recheck_s=0.5)  # another worker, same store
    key, secret = await here.create(KeySpec(name="k"))
    assert (await elsewhere.authenticate(secret)).key == key  # now cached there
    await here.revoke(key.id)
    with pytest.raises(AuthenticationError, match="revoked"):
        await here.authenticate(secret)
    assert (await elsewhere.authenticate(secret)).key == key  # still within its cache window
    clock.advance(0.5)
    with pytest.raises(AuthenticationError, match="revoked"):
        await elsewhere.authenticate(secret)


async def test_revoked_key_refused_even_in_open_mode() -> None:
    auth = Authenticator(MemoryKeyStore(), None)
    key, secret = await auth.create(KeySpec(name="k"))
    await auth.revoke(key.id)
    with pytest.raises(AuthenticationError):
        await auth.authenticate(secret)


def test_cli_create_list_revoke(tmp_path: Path) -> None:
    cfg = tmp_path / "llmrelay.yaml"
    cfg.write_text(f"storage: {{url: 'sqlite:///{tmp_path}/keys.db'}}\n")
    runner = CliRunner()
    made = runner.invoke(main, ["keys", "create", "--name", "ci", "--models", "a,b", "--budget-usd", "5",
                                "--budget-period", "week", "--expires", "30d", "--json", "--config", str(cfg)])
    assert made.exit_code == 0, made.output
    out = json.loads(made.output)
    assert set(out) == {"id", "key"} and out["key"].startswith(KEY_PREFIX)
    listed = runner.invoke(main, ["keys", "list", "--json", "--config", str(cfg)])
    rows = json.loads(listed.output)
    assert rows[0]["id"] == out["id"] and rows[0]["models"] == ["a", "b"] and rows[0]["budget_period"] == "week"
    assert out["key"] not in listed.output
    assert runner.invoke(main, ["keys", "revoke", out["id"], "--config", str(cfg)]).exit_code == 0
    assert "revoked" in runner.invoke(main, ["keys", "list", "--config", str(cfg)]).output
    assert runner.invoke(main, ["keys", "revoke", "key_nope", "--config", str(cfg)]).exit_code == 1


@pytest.mark.parametrize(("url", "path"), [
    ("sqlite:///keys.db", "keys.db"), ("sqlite:////var/lib/keys.db", "/var/lib/keys.db"),
    ("sqlite://", ":memory:"), ("sqlite://:memory:", ":memory:"),
])
def test_key_store_reads_sqlite_urls_like_every_store(url: str, path: str) -> None:
    from llmrelay.stores.urls import sqlite_path

    store = open_key_store(url)
    assert isinstance(store, SQLiteKeyStore) and store.path == path == sqlite_path(url)
