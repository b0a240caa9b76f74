"""``llmrelay config check FILE``: validate a config and report every problem with its location."""

from __future__ import annotations

from pathlib import Path

import click

from ..config import ConfigProblems, load_settings
from ._common import config_file, config_option, fail


@click.group(name="config")
def command() -> None:
    """Work with config files."""


@command.command("check")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path), required=False)
@config_option
def check(file: Path | None, config_path: Path | None) -> None:
    """Validate FILE (default: --config, $LLMRELAY_CONFIG, ./llmrelay.yaml); exit 1 listing every
    problem with its file and line."""
    file = file or config_file(config_path)
    if file is None:
        fail("no config file to check: give FILE or --config FILE, set LLMRELAY_CONFIG, or create ./llmrelay.yaml")
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
