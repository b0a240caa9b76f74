"""``llmrelay audit verify | head | report``: the tamper-evident audit log."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import click

from ._common import config_option, echo_json, fail, load


def _log(config_path: Path | None) -> Any:
    from ..safety.audit import AuditLog

    return AuditLog.from_settings(load(config_path))


@click.group("audit")
def command() -> None:
    """The audit log's hash chain."""


@command.command("verify")
@click.option("--head", "expected_head", default=None, help="An exported head mac that must still be in the chain.")
@click.option("--json", "as_json", is_flag=True)
@config_option
def verify(expected_head: str | None, as_json: bool, config_path: Path | None) -> None:
    """Check every link; exit 1 and name the first bad entry."""
    async def run() -> Any:
        log = _log(config_path)
        try:
            return await log.verify(expected_head)
        finally:
            await log.store.aclose()

    result = asyncio.run(run())
    if as_json:
        echo_json(result.to_dict())
    elif result.ok:
        click.echo(f"ok: {result.checked} entries, head {result.head_id} {result.head}")
    else:
        click.echo(f"TAMPERED: entry {result.first_bad_id}: {result.reason} ({result.checked} entries verified before it)", err=True)
    if not result.ok:
        raise SystemExit(1)


@command.command("head")
@config_option
def head(config_path: Path | None) -> None:
    """Print the chain head (id, mac, time) for external anchoring."""
    async def run() -> Any:
        log = _log(config_path)
        try:
            return await log.head()
        finally:
            await log.store.aclose()

    echo_json(asyncio.run(run()))


@command.command("report")
@click.option("--since", default="30d", help="Period start: 7d, 24h, or a Unix time.")
@click.option("--format", "fmt", type=click.Choice(["json", "pdf"]), default="json")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None)
@config_option
def report(since: str, fmt: str, out: Path | None, config_path: Path | None) -> None:
    """Compliance report: safety events, chain status, retention, privacy requests."""
    from ..safety.compliance import compliance_report, render_pdf

    settings = load(config_path)
    now = time.time()
    start = _since(since, now)

    async def run() -> dict[str, Any]:
        from ..safety.audit import AuditLog

        log = AuditLog.from_settings(settings)
        try:
            return await compliance_report(log, start, now, settings.storage.retention_days)
        finally:
            await log.store.aclose()

    data = asyncio.run(run())
    if fmt == "pdf":
        if out is None:
            fail("--format pdf needs --out FILE")
        render_pdf(data, out)
        click.echo(str(out))
    elif out is not None:
        import orjson

        out.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2))
    else:
        echo_json(data)


def _since(value: str, now: float) -> float:
    units = {"d": 86400, "h": 3600, "m": 60}
    if value[-1:] in units and value[:-1].isdigit():
        return now - int(value[:-1]) * units[value[-1]]
    try:
        return float(value)
    except ValueError:
        fail(f"--since {value!r}: use 7d, 24h, 30m or a Unix time")
