"""``llmrelay pricing show [MODEL]``: the prices in force (config overrides and bundled data)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ._common import config_option, echo_json, load


@click.group("pricing")
def command() -> None:
    """Model prices."""


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:g}"


@command.command("show")
@config_option
@click.argument("model", required=False)
@click.option("--json", "as_json", is_flag=True)
def show(config_path: Path | None, model: str | None, as_json: bool) -> None:
    """Prices per million tokens for each configured deployment (or MODEL) in the configured currency."""
    from ..cost.pricing import PricingEngine

    settings = load(config_path)
    engine = PricingEngine(settings.pricing)
    targets: list[tuple[str | None, str | None, str, str]] = []
    for group, deps in settings.models.items():
        for d in deps:
            if model in (None, group, d.model, f"{d.provider}/{d.model}"):
                targets.append((d.provider, settings.providers[d.provider].kind, d.model, group))
    if model and not targets:
        targets.append((None, None, model, "-"))
    out: list[dict[str, Any]] = []
    for provider, kind, name, group in targets:
        p = engine.prices(provider, kind, name)
        r = p.base if p else None
        conv = (lambda v: None if v is None else round(engine.convert(v), 6))  # noqa: E731
        out.append({"group": group, "provider": provider, "model": name, "source": p.source if p else "unpriced",
                    "currency": engine.currency,
                    "input": conv(r.input) if r else None, "output": conv(r.output) if r else None,
                    "cache_read": conv(r.cache_read) if r else None, "cache_write": conv(r.cache_write) if r else None,
                    "cache_write_1h": conv(r.cache_write_1h) if r else None,
                    "tiers": [{"above_input_tokens": t, "input": conv(x.input), "output": conv(x.output)}
                              for t, x in (p.tiers if p else ())]})
    if as_json:
        echo_json(out)
        return
    click.echo(f"{'model':40} {'input':>9} {'output':>9} {'c.read':>9} {'c.write':>9}  source  ({engine.currency}/Mtok)")
    for row in out:
        name = f"{row['provider']}/{row['model']}" if row["provider"] else row["model"]
        click.echo(f"{name:40} {_fmt(row['input']):>9} {_fmt(row['output']):>9} {_fmt(row['cache_read']):>9} "
                   f"{_fmt(row['cache_write']):>9}  {row['source']}" + ("  (+tiers)" if row["tiers"] else ""))
