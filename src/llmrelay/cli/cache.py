"""``llmrelay cache clear [--model M] [--key K]`` and ``llmrelay cache stats``: the response cache.

They act on a persistent cache (``cache.backend: sqlite|redis``) directly. The default in-memory
cache lives inside the gateway process; clear it there with ``DELETE /admin/cache``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from ..caching.admin import clear_stored, stored_stats
from ._common import config_option, echo_json, fail, load


@click.group("cache", help="The response cache: clear it, or see how full it is.")
def command() -> None:
    pass


@command.command("clear", help="Remove cached answers: all, one model group (--model) or one entry (--key).")
@config_option
@click.option("--model", default=None, help="Only this model group.")
@click.option("--key", default=None, help="Only this entry (a cache key, 'group|digest').")
def clear(config_path: Path | None, model: str | None, key: str | None) -> None:
    settings = load(config_path)
    try:
        n = asyncio.run(clear_stored(settings, model=model, key=key))
    except Exception as exc:
        fail(str(exc))
    what = f"entry {key}" if key else f"model group {model!r}" if model else "the whole cache"
    click.echo(f"cleared {n} cached answer{'s' if n != 1 else ''} ({what})")


@command.command("stats", help="Entries and bytes in the persistent cache.")
@config_option
def stats(config_path: Path | None) -> None:
    settings = load(config_path)
    if settings.cache.backend == "memory":
        fail("the memory cache lives inside the gateway process: see llmrelay_cache_bytes on /metrics")
    try:
        echo_json(asyncio.run(stored_stats(settings)))
    except Exception as exc:
        fail(str(exc))
