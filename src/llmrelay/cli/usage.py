"""``llmrelay usage report`` and ``llmrelay usage export``: spend and usage from the ledger."""

from __future__ import annotations

import asyncio
import csv
import io
import time
from pathlib import Path
from typing import Any

import click

from ._common import config_option, echo_json, fail, load


@click.group("usage")
def command() -> None:
    """Spend and usage from the usage ledger."""


async def _report(settings: Any, since: str, by: tuple[str, ...], filters: dict[str, str],
                  page: tuple[int, int] = (1000, 0)) -> Any:
    from ..cost.analytics import usage_report
    from ..cost.ledger import open_ledger
    from ..cost.pricing import PricingEngine

    store = open_ledger(settings.storage.url, timezone=settings.pricing.timezone)
    try:
        return await usage_report(store, settings, PricingEngine(settings.pricing), since=since, by=by,
                                  filters=filters, limit=page[0], offset=page[1]), store
    except Exception:
        await store.aclose()
        raise


def _by(value: str) -> tuple[str, ...]:
    from ..cost.analytics import DIMENSIONS

    dims = tuple(d.strip() for d in value.split(",") if d.strip())
    bad = [d for d in dims if d not in DIMENSIONS]
    if bad:
        fail(f"--by {','.join(bad)}: unknown dimension; use {', '.join(DIMENSIONS)}")
    return dims


@command.command("report")
@config_option
@click.option("--since", default="7d", show_default=True, help="Window: 30m, 24h, 7d, 2w...")
@click.option("--by", "by", default="model", show_default=True, help="Group by: model,provider,key,user,team,day,...")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@click.option("--user", default=None, help="Only this user.")
@click.option("--key", default=None, help="Only this key id.")
@click.option("--limit", default=1000, show_default=True, help="Groups per page (the costliest first; max 10000).")
@click.option("--offset", default=0, show_default=True, help="Skip this many groups (the next page).")
def report(config_path: Path | None, since: str, by: str, fmt: str, user: str | None, key: str | None,
           limit: int, offset: int) -> None:
    """Spend and usage, grouped, with trend, forecast and recommendations."""
    settings = load(config_path)
    filters = {k: v for k, v in (("user", user), ("key", key)) if v}

    async def run() -> Any:
        rep, store = await _report(settings, since, _by(by), filters, (limit, offset))
        await store.aclose()
        return rep

    try:
        rep = asyncio.run(run())
    except ValueError as exc:
        fail(str(exc))
    if fmt == "json":
        echo_json(rep.to_dict())
        return
    cols = [*rep.by, "requests", "input_tokens", "output_tokens", "cost_usd", "errors", "avg_latency_ms"]
    cols = [{"key": "key_id", "user": "user_id", "group": "model_group"}.get(c, c) for c in cols]
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        w.writerows(rep.rows)
        click.echo(buf.getvalue(), nl=False)
        return
    click.echo(_table(cols, rep.rows))
    if rep.truncated:
        click.echo(f"\n(groups {offset + 1}-{offset + len(rep.rows)} of {rep.groups}, costliest first; "
                   f"--offset {offset + len(rep.rows)} for the next page)")
    t = rep.total
    click.echo(f"\ntotal: {t.get('requests', 0)} requests, ${t.get('cost_usd', 0):.4f}"
               f"  |  month to date ${rep.month_to_date_usd:.2f}, forecast ${rep.forecast_month_usd:.2f}")
    for r in rep.recommendations[:5]:
        click.echo(f"  save ${r.saving_usd:.4f}: {r.message}")


def _table(cols: list[str], rows: list[dict[str, Any]]) -> str:
    def fmt(v: Any) -> str:
        return f"{v:.6f}" if isinstance(v, float) else str(v if v is not None else "")

    cells = [[fmt(r.get(c)) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) if cells else len(c) for i, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


@command.command("export")
@config_option
@click.option("--format", "fmt", type=click.Choice(["csv", "json", "pdf"]), required=True)
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--since", default="30d", show_default=True)
@click.option("--by", "by", default="model", show_default=True)
def export(config_path: Path | None, fmt: str, out: Path, since: str, by: str) -> None:
    """Export ledger rows (csv, json) or a report with charts (pdf)."""
    from ..cost.analytics import parse_since
    from ..cost.export import export_usage

    settings = load(config_path)

    async def run() -> int:
        rep, store = await _report(settings, since, _by(by), {})
        try:
            return await export_usage(store, rep, fmt, out, time.time() - parse_since(since)[0])
        finally:
            await store.aclose()

    try:
        n = asyncio.run(run())
    except (ValueError, RuntimeError) as exc:
        fail(str(exc))
    click.echo(f"wrote {out} ({n} rows)")
