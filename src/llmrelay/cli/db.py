"""``llmrelay db upgrade`` / ``llmrelay db status``: the schema of storage.url (SQLite or PostgreSQL).

    llmrelay db status --config llmrelay.yaml      # exit 0 up to date, 1 pending, 2 newer than this release
    llmrelay db upgrade --config llmrelay.yaml     # apply pending migrations (safe to run concurrently)
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from ..errors import LLMRelayError
from ..stores.migrate import SchemaTooNewError, _safe, schema_status, upgrade
from ..stores.migrations import MIGRATIONS
from ._common import config_option, echo_json, fail, load


@click.group(name="db")
def command() -> None:
    """Database schema: status and upgrade (storage.url)."""


@command.command(name="status")
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def status_cmd(config_path: Path | None, as_json: bool) -> None:
    """Show the schema version of storage.url and the migrations still to apply."""
    url = load(config_path).storage.url
    try:
        st = asyncio.run(schema_status(url))
    except LLMRelayError as exc:
        fail(str(exc))
    pending = [{"version": m.version, "name": m.name} for m in MIGRATIONS if m.version in st.pending]
    state = "newer" if st.too_new else ("pending" if pending else "current")
    if as_json:
        echo_json({"url": _safe(url), "dialect": st.dialect, "current": st.current, "latest": st.latest,
                   "state": state, "pending": pending})
    else:
        click.echo(f"{_safe(url)} ({st.dialect}): schema version {st.current}, this release knows {st.latest}")
        for m in pending:
            click.echo(f"  pending {m['version']}: {m['name']}")
        if st.too_new:
            click.echo("  the database is newer than this release: upgrade llmrelay before starting it")
        elif not pending:
            click.echo("  up to date")
    raise SystemExit({"current": 0, "pending": 1, "newer": 2}[state])


@command.command(name="upgrade")
@config_option
def upgrade_cmd(config_path: Path | None) -> None:
    """Apply every pending migration to storage.url."""
    url = load(config_path).storage.url
    try:
        applied = asyncio.run(upgrade(url))
    except SchemaTooNewError as exc:
        fail(str(exc), code=2)
    except LLMRelayError as exc:
        fail(str(exc))
    names = {m.version: m.name for m in MIGRATIONS}
    for v in applied:
        click.echo(f"applied {v}: {names[v]}")
    click.echo(f"{_safe(url)}: schema up to date (version {MIGRATIONS[-1].version})")
