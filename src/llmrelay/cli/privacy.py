"""``llmrelay privacy export --user U`` / ``privacy erase --user U``: GDPR access and erasure,
over every store registered in ``services.privacy``."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import click

from ._common import config_option, echo_json, load


async def _with_services(config_path: Path | None, fn: Callable[[Any], Awaitable[Any]]) -> Any:
    from ..services import Services
    from ..wiring import wire_services

    services = Services.build(load(config_path))
    wire_services(services)
    try:
        return await fn(services)
    finally:
        await services.aclose()


@click.group("privacy")
def command() -> None:
    """GDPR access and erasure requests."""


@command.command("export")
@click.option("--user", required=True)
@config_option
def export(user: str, config_path: Path | None) -> None:
    """Print all data held about USER, per store (JSON)."""
    async def run(services: Any) -> Any:
        data = await services.privacy.export(user)
        if services.audit is not None:
            services.audit.record("privacy.export", {"stores": services.privacy.names}, user=user)
        return {"user": user, "stores": data}

    echo_json(asyncio.run(_with_services(config_path, run)))


@command.command("erase")
@click.option("--user", required=True)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@config_option
def erase(user: str, yes: bool, config_path: Path | None) -> None:
    """Delete USER's data from every store; the audit chain keeps verifying."""
    if not yes:
        click.confirm(f"Erase all data about {user!r}?", abort=True)

    async def run(services: Any) -> Any:
        result = await services.privacy.erase(user)
        if services.audit is not None:
            # Recorded without the user: after erasure nothing may link back to them.
            services.audit.record("privacy.erase", {"stores": services.privacy.names})
        return {"erased": True, "stores": result}

    echo_json(asyncio.run(_with_services(config_path, run)))
