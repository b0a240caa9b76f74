"""What the commands share: finding and loading the config, printing errors."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from ..config import ConfigProblems, Settings, load_settings, settings_from_env

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Config file (default: $LLMRELAY_CONFIG, else ./llmrelay.yaml if present).",
)


def config_file(path: Path | None) -> Path | None:
    if path is not None:
        return path
    env = os.environ.get("LLMRELAY_CONFIG")
    if env:
        return Path(env)
    default = Path("llmrelay.yaml")
    return default if default.exists() else None


def load(path: Path | None, *, allow_env: bool = True) -> Settings:
    """The settings from the config file, or from the environment when there is none."""
    p = config_file(path)
    try:
        if p is None:
            if not allow_env:
                fail("no config file: give --config FILE, set LLMRELAY_CONFIG, or create ./llmrelay.yaml")
            return settings_from_env()
        return load_settings(p)
    except ConfigProblems as exc:
        fail(str(exc))


def fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def echo_json(obj: Any) -> None:
    import orjson

    click.echo(orjson.dumps(obj, option=orjson.OPT_INDENT_2).decode())
