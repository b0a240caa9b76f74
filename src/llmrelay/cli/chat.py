"""``llmrelay chat --model M "prompt"``: one call, streamed to the terminal, with its cost."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import click

from ..context import RequestContext
from ..errors import LLMRelayError
from ..relay import Relay
from ..types import Message
from ._common import config_option, fail, load


@click.command(name="chat")
@click.option("--model", "-m", required=True, help="A model group from the config (or provider/model).")
@click.option("--system", "-s", default=None, help="A system prompt.")
@click.option("--max-tokens", type=int, default=None)
@click.option("--temperature", type=float, default=None)
@click.option("--no-stream", is_flag=True, help="Make a non-streamed call.")
@config_option
@click.argument("prompt")
def command(model: str, system: str | None, max_tokens: int | None, temperature: float | None,
            no_stream: bool, config_path: Path | None, prompt: str) -> None:
    """Send PROMPT (or - for stdin) and stream the answer, then print tokens and cost."""
    if prompt == "-":
        prompt = sys.stdin.read()
    messages = ([Message.system(system)] if system else []) + [Message.user(prompt)]
    settings = load(config_path)

    async def run() -> RequestContext:
        ctx = RequestContext(protocol="cli")
        async with Relay(settings) as relay:
            given: dict[str, Any] = {"max_tokens": max_tokens, "temperature": temperature}
            params = {k: v for k, v in given.items() if v is not None}
            if no_stream:
                result = await relay.chat(model=model, messages=messages, ctx=ctx, **params)
                click.echo(result.text)
            else:
                async for chunk in relay.stream(model=model, messages=messages, ctx=ctx, **params):
                    if chunk.text:
                        click.echo(chunk.text, nl=False)
                click.echo()
        return ctx

    try:
        ctx = asyncio.run(run())
    except LLMRelayError as exc:
        fail(str(exc))
    usage = ctx.usage
    tokens = f"{usage.input_tokens} in / {usage.output_tokens} out" if usage else "usage unknown"
    cost = "unpriced" if ctx.unpriced else f"${ctx.cost_usd:.6f}"
    click.echo(f"[{ctx.provider}/{ctx.upstream_model} · {tokens} · {cost}]", err=True)
