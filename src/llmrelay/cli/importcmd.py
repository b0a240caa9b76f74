"""``llmrelay import litellm-config FILE [--out FILE]``: translate another gateway's config.

    llmrelay import litellm-config litellm.yaml --out llmrelay.yaml
    llmrelay config check llmrelay.yaml

What could not be translated is listed on stderr and as comments at the top of the output.
"""

from __future__ import annotations

from pathlib import Path

import click
import yaml

from ._common import fail


@click.group(name="import")
def command() -> None:
    """Translate another gateway's config into an llmrelay config."""


@command.command("litellm-config")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the llmrelay config here (default: stdout).")
def litellm_config(file: Path, out: Path | None) -> None:
    """Translate a LiteLLM proxy config.yaml (FILE) into an llmrelay config."""
    from ..migrate import render_yaml, translate_litellm

    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except OSError as exc:
        fail(f"{file}: cannot read the file ({exc.strerror or exc})")
    except yaml.YAMLError as exc:
        fail(f"{file}: not valid YAML ({exc})")
    if not isinstance(data, dict):
        fail(f"{file}: a LiteLLM config is a mapping with model_list, router_settings, ...")
    translation = translate_litellm(data)
    text = render_yaml(translation, file.name)
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
    notes = translation.notes
    for n in notes.untranslated:
        click.echo(f"not translated: {n}", err=True)
    for n in notes.approximated:
        click.echo(f"approximated: {n}", err=True)
    models = translation.config.get("models", {})
    click.echo(f"{file}: {len(models)} model groups translated, {len(notes.untranslated)} setting(s) "
               f"not translated, {len(notes.approximated)} approximated"
               + (f"; wrote {out}" if out else ""), err=True)
