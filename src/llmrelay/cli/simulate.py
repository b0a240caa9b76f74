"""``llmrelay simulate``: run the simulated upstreams (OpenAI, Anthropic, Gemini, Ollama) with fault injection."""

from __future__ import annotations

import click


@click.command(name="simulate")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=9000, show_default=True, type=int, help="Port to listen on.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the RNG behind random (rate=) faults.")
# DESIGN: every command takes --config. This one needs no gateway config; the flag is accepted
# so scripts can pass the same options to every command.
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="Accepted like on every command; not needed here.")
def command(host: str, port: int, seed: int, config_path: str | None) -> None:
    """Serve wire-faithful fake provider APIs: /openai/v1, /anthropic/v1, /gemini/v1beta, /ollama/api.

    Choose answer length and faults per request with x-sim-* headers or a model suffix such as
    `sim-model+words=200,chunks=20,fault=503,rate=0.3`; see GET /_sim/stats and POST /_sim/faults.
    """
    from ..simulator import run

    click.echo(f"llmrelay simulator on http://{host}:{port} (openai, anthropic, gemini, ollama)", err=True)
    run(host=host, port=port, seed=seed)
