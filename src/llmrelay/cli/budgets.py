"""``llmrelay budgets status`` and ``llmrelay budgets reset-brake``."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from ._common import config_option, echo_json, load


@click.group("budgets")
def command() -> None:
    """Budgets and the emergency brake (shared state needs redis.url to reach a running gateway)."""


def _manager(config_path: Path | None):  # type: ignore[no-untyped-def]
    from ..cost.budgets import BudgetManager
    from ..cost.counters import open_counters

    settings = load(config_path)
    return BudgetManager(settings, open_counters(settings.redis.url)), settings


@command.command("reset-brake")
@config_option
def reset_brake(config_path: Path | None) -> None:
    """Lift a tripped emergency brake."""
    manager, settings = _manager(config_path)
    if not settings.redis.url:
        click.echo("note: without redis.url budget state lives in each gateway process; use the admin API "
                   "(POST /admin/budgets/reset-brake) to reset a running gateway", err=True)

    async def run() -> None:
        await manager.reset_brake()
        await manager.counters.aclose()

    asyncio.run(run())
    click.echo("emergency brake reset")


@command.command("status")
@config_option
def status(config_path: Path | None) -> None:
    """Spend against each configured budget this period (JSON)."""
    manager, _ = _manager(config_path)

    async def run() -> list[dict[str, object]]:
        try:
            return await manager.status()
        finally:
            await manager.counters.aclose()

    echo_json(asyncio.run(run()))
