"""``llmrelay config check FILE``: validate a config and report every problem with its location."""

from __future__ import annotations

from pathlib import Path

import click

from ..config import ConfigProblems, load_settings


@click.group(name="config")
def command() -> None:
    """Work with config files."""


@command.command("check")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def check(file: Path) -> None:
    """Validate FILE; exit 1 listing every problem with its file and line."""
    try:
        settings = load_settings(file)
    except ConfigProblems as exc:
        for problem in exc.problems:
            click.echo(problem, err=True)
        click.echo(f"{file}: {len(exc.problems)} problem(s)", err=True)
        raise SystemExit(1) from None
    click.echo(
        f"{file}: OK ({len(settings.providers)} providers, {len(settings.models)} model groups)"
    )
