"""The ``llmrelay`` command line.

Each command (or command group) lives in its own module in this package and exposes ``command``, a
click command; they are discovered here, so adding a command is adding a file. Every command takes
``--config FILE`` (default: ``$LLMRELAY_CONFIG``, else ``./llmrelay.yaml`` if present).
"""

from __future__ import annotations

import importlib
import pkgutil

import click

from ..__about__ import __version__


class _Commands(click.Group):
    """Loads the command modules of this package on first use."""

    def _load(self) -> None:
        if getattr(self, "_loaded", False):
            return
        self._loaded = True
        for mod in pkgutil.iter_modules(__path__):
            if mod.name.startswith("_"):
                continue
            module = importlib.import_module(f"{__name__}.{mod.name}")
            cmd = getattr(module, "command", None)
            if isinstance(cmd, click.Command):
                self.add_command(cmd)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._load()
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        self._load()
        return super().get_command(ctx, cmd_name)


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="llmrelay")
def main() -> None:
    """llmrelay: an LLM gateway. Every provider behind one API; every call accountable
    for its cost, its safety and its speed."""
