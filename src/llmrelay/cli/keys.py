"""``llmrelay keys create|list|revoke``: virtual keys, in the configured storage (storage.url).

Creating and revoking are audited like the admin API's (``admin.key_created`` /
``admin.key_revoked`` on the audit chain, with ``via: cli``) when ``safety.audit`` is on."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import click

from ..config import Settings
from ..errors import LLMRelayError
from ..keys import KeySpec, KeyStore, open_key_store, parse_duration
from ._common import config_option, echo_json, fail, load

T = TypeVar("T")


def _store(config_path: Path | None) -> tuple[KeyStore, Settings]:
    settings = load(config_path)
    url = settings.storage.url
    if url.startswith("memory://"):
        fail("storage.url is memory://, so keys made here would vanish; configure a sqlite:/// store")
    return open_key_store(url), settings


def _run(store: KeyStore, work: Awaitable[T]) -> T:
    async def go() -> T:
        try:
            return await work
        finally:
            await store.aclose()

    try:
        return asyncio.run(go())
    except LLMRelayError as exc:
        fail(str(exc))


async def _audited(settings: Settings, work: Awaitable[T], entry: Callable[[T], tuple[str, Mapping[str, Any], str | None] | None]) -> T:
    """Do ``work``, then seal the audit entry ``entry(result)`` describes (None: nothing to audit)."""
    result = await work
    record = entry(result)
    if record is None or not settings.safety.audit:
        return result
    from ..safety.audit import AuditLog

    log = AuditLog.from_settings(settings)
    kind, data, user = record
    log.record(kind, {**data, "via": "cli"}, user=user)
    await log.aclose()  # writes the entry before the command exits
    return result


@click.group(name="keys")
def command() -> None:
    """Create, list and revoke virtual keys."""


@command.command("create")
@click.option("--name", required=True)
@click.option("--user", default=None)
@click.option("--team", default=None)
@click.option("--models", default=None, help="Comma-separated model groups the key may use (default: all).")
@click.option("--budget-usd", type=float, default=None)
@click.option("--budget-period", type=click.Choice(["day", "week", "month", "total"]), default=None)
@click.option("--rpm", type=click.IntRange(1), default=None)
@click.option("--tpm", type=click.IntRange(1), default=None)
@click.option("--policy", default=None, help="Safety level for this key (off, low, moderate, strict).")
@click.option("--priority", type=click.Choice(["high", "normal", "low"]), default="normal")
@click.option("--expires", default=None, help="Lifetime, e.g. 30d, 12h, 2w.")
@click.option("--json", "as_json", is_flag=True, help='Print {"id": ..., "key": ...}.')
@config_option
def create(name: str, user: str | None, team: str | None, models: str | None, budget_usd: float | None,
           budget_period: str | None, rpm: int | None, tpm: int | None, policy: str | None, priority: str,
           expires: str | None, as_json: bool, config_path: Path | None) -> None:
    """Create a key; it is printed once and only its hash is stored."""
    try:
        expires_at = time.time() + parse_duration(expires) if expires else None
    except LLMRelayError as exc:
        fail(str(exc))
    spec = KeySpec(name=name, user=user, team=team, models=tuple(m.strip() for m in (models or "").split(",") if m.strip()),
                   budget_usd=budget_usd, budget_period=budget_period, rpm=rpm, tpm=tpm, policy=policy,
                   priority=priority, expires_at=expires_at)
    store, settings = _store(config_path)
    key, secret = _run(store, _audited(settings, store.create(spec), lambda made: (
        "admin.key_created", {"key_id": made[0].id, "name": made[0].name, "team": made[0].team}, made[0].user)))
    if as_json:
        echo_json({"id": key.id, "key": secret})
        return
    click.echo(f"{secret}\n(id {key.id}; shown once, store it now)")


@command.command("list")
@click.option("--json", "as_json", is_flag=True)
@config_option
def list_keys(as_json: bool, config_path: Path | None) -> None:
    """List keys (never their secrets)."""
    store, _ = _store(config_path)
    keys = _run(store, store.list())
    if as_json:
        echo_json([k.public() for k in keys])
        return
    for k in keys:
        state = "revoked" if k.revoked else ("expired" if k.expired(time.time()) else "active")
        extra: list[Any] = [f"user={k.user}" if k.user else "", f"team={k.team}" if k.team else "",
                            f"models={','.join(k.models)}" if k.models else "",
                            f"budget=${k.budget_usd}/{k.budget_period}" if k.budget_usd else ""]
        click.echo("\t".join([k.id, k.name, k.prefix + "...", state, *[e for e in extra if e]]))


@command.command("revoke")
@click.argument("key_id")
@config_option
def revoke(key_id: str, config_path: Path | None) -> None:
    """Revoke KEY_ID at once (running gateways notice within half a second)."""
    store, settings = _store(config_path)
    revoked = _audited(settings, store.revoke(key_id), lambda done: ("admin.key_revoked", {"key_id": key_id}, None) if done else None)
    if not _run(store, revoked):
        fail(f"no key with id {key_id!r}")
    click.echo(f"revoked {key_id}")
