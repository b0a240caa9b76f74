"""``llmrelay safety test``: what a safety policy would do with a text."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import orjson

from ._common import config_option, fail, load


@click.group("safety")
def command() -> None:
    """Safety policies: try them on text."""


@command.command("test")
@click.argument("text", required=False)
@click.option("--policy", "level", type=click.Choice(["off", "low", "moderate", "strict"]), default=None,
              help="Level to apply (default: the config's safety.level, else moderate).")
@click.option("--json", "as_json", is_flag=True, help='Print {"action", "findings", "text"}.')
@click.option("--jsonl", is_flag=True, help='Read one {"text": ...} object per line on stdin; print one result per line.')
@config_option
def test(text: str | None, level: str | None, as_json: bool, jsonl: bool, config_path: Path | None) -> None:
    """Show what the policy does with TEXT (or '-' for stdin)."""
    from ..safety.engine import SafetyEngine
    from ..safety.policy import global_policy, policy_for_level
    from ..safety.service import engine_for

    settings = load(config_path) if config_path else None
    if level is None:
        policy = global_policy(settings.safety) if settings else policy_for_level("moderate")
    else:
        policy = policy_for_level(level)
    # With a config, its learned scorer and classifiers take part, as they would in the gateway.
    engine = engine_for(settings.safety) if settings else SafetyEngine()
    if jsonl:
        for n, line in enumerate(sys.stdin, 1):
            if not line.strip():
                continue
            try:
                item = orjson.loads(line)
                value = item["text"] if isinstance(item, dict) else None
            except (orjson.JSONDecodeError, KeyError):
                value = None
            if not isinstance(value, str):
                fail(f'line {n}: expected a JSON object with a "text" string')
            click.echo(orjson.dumps(engine.inspect(value, policy).to_dict()).decode())
        return
    if text is None:
        fail("give TEXT, '-' to read stdin, or --jsonl")
    if text == "-":
        text = sys.stdin.read()
    decision = engine.inspect(text, policy)
    if as_json:
        click.echo(orjson.dumps(decision.to_dict()).decode())
        return
    click.echo(f"action: {decision.action}")
    for f in decision.findings:
        click.echo(f"  {f.category:<10} {f.type or '':<18} {f.start}-{f.end}  score {f.score:.2f}")
    if decision.text != text:
        click.echo(f"text: {decision.text}")
