"""``llmrelay serve --demo``: the settings of a gateway over the built-in simulator.

Each provider kind that has both an adapter and a simulated upstream gets a provider and a model
group (``demo-fast``, ``demo-claude``, ``demo-gemini``, ``demo-ollama``), plus ``demo-failover``
whose first deployment always fails with a 503 so the second one answers. Without the simulator
the demo falls back to the scripted fake provider.
"""

from __future__ import annotations

import importlib.util
from typing import Any

# kind -> (provider name, base URL path under the simulator, model group, upstream model)
_KINDS: dict[str, tuple[str, str, str, str]] = {
    "openai": ("sim-openai", "/openai/v1", "demo-fast", "gpt-4o-mini"),
    "anthropic": ("sim-anthropic", "/anthropic", "demo-claude", "claude-sonnet-4-5"),
    "gemini": ("sim-gemini", "/gemini", "demo-gemini", "gemini-2.5-flash"),
    "ollama": ("sim-ollama", "/ollama", "demo-ollama", "llama3.2"),
}


def simulator_available() -> bool:
    return importlib.util.find_spec("llmrelay.simulator") is not None


def _servable(kind: str) -> bool:
    """An adapter for the kind exists, and the simulator fakes its API."""
    from ..errors import ConfigError
    from ..providers.registry import provider_class

    try:
        provider_class(kind)
    except (ConfigError, ImportError):
        return False
    return importlib.util.find_spec(f"llmrelay.simulator.{kind}") is not None


def demo_settings(sim_url: str | None) -> dict[str, Any]:
    """The demo config: over the simulator at ``sim_url``, or over the fake provider when None."""
    base: dict[str, Any] = {"storage": {"url": "sqlite://:memory:"}, "server": {"host": "127.0.0.1"}}
    if sim_url is None:
        fake = {"fake": {"kind": "fake", "options": {"chunk_size": 4}}}
        groups = {"demo-fast": [{"provider": "fake", "model": "echo"}],
                  "demo-failover": [{"provider": "fake", "model": "echo"}]}
        return {**base, "providers": fake, "models": groups}
    providers: dict[str, Any] = {}
    models: dict[str, Any] = {}
    for kind, (name, path, group, model) in _KINDS.items():
        if not _servable(kind):
            continue
        providers[name] = {"kind": kind, "base_url": sim_url + path, "api_key": "sim-key"}
        models[group] = [{"provider": name, "model": model}]
    first = next(iter(providers), None)
    if first is not None:
        working = models[next(iter(models))][0]
        models["demo-failover"] = [{"provider": first, "model": working["model"] + "+fault=503"}, working]
    return {**base, "providers": providers, "models": models}


def banner(url: str, models: list[str]) -> str:
    model = models[0] if models else "demo-fast"
    return f"""llmrelay demo gateway at {url}  (simulated providers, no keys needed)
models: {', '.join(models)}

  curl {url}/v1/chat/completions -H 'content-type: application/json' \\
    -d '{{"model": "{model}", "messages": [{{"role": "user", "content": "Hello!"}}]}}'

  from openai import OpenAI
  client = OpenAI(base_url="{url}/v1", api_key="anything")
  print(client.chat.completions.create(model="{model}",
        messages=[{{"role": "user", "content": "Hello!"}}]).choices[0].message.content)

metrics: {url}/metrics   health: {url}/health/ready   Ctrl-C stops.
"""
