"""Presets: known servers that speak an existing protocol, with their defaults.

A config entry ``{kind: groq, api_key: ...}`` is the OpenAI adapter with Groq's base URL and quirks.
Adding a preset is adding one row here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any


@dataclass(frozen=True, slots=True)
class Preset:
    # The built-in adapter that speaks this server's protocol.
    adapter: str
    base_url: str | None
    # Environment variable the key is read from when the config gives none.
    api_key_env: str | None = None
    # Adapter options (see the adapter's docstring): e.g. whether the server reports usage in streams.
    options: Mapping[str, Any] = field(default_factory=dict)
    # `llmrelay serve` without a config configures this provider when the variable is set: the key
    # variable above, or this one holding the server's address.
    base_url_env: str | None = None
    # Model groups served by this provider when configured from the environment.
    env_models: tuple[str, ...] = ()


# Dialect options of OpenAI-compatible servers: see llmrelay.providers.openai_wire.WireOptions.
# Groq and Mistral always report usage in the last chunk (Groq also in x_groq); Mistral knows no
# stream_options.
# ``native_n: false``: the server answers only n=1 (it rejects or ignores more), so the gateway fans
# out n calls (providers/choices.py).
_LOCAL: Mapping[str, Any] = MappingProxyType({"top_k": True, "native_n": False})

PRESETS: dict[str, Preset] = {
    "openai": Preset(
        "openai", "https://api.openai.com/v1", "OPENAI_API_KEY",
        env_models=("gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "o4-mini"),
    ),
    "shimmy": Preset("openai", "http://127.0.0.1:11435/v1", None, _LOCAL, base_url_env="SHIMMY_BASE_URL"),
    "vllm": Preset("openai", "http://127.0.0.1:8000/v1", None,
                   {**_LOCAL, "native_n": True, "reasoning_echo": "reasoning_content"}),
    "llamacpp": Preset("openai", "http://127.0.0.1:8080/v1", None, _LOCAL),
    "lmstudio": Preset("openai", "http://127.0.0.1:1234/v1", None, _LOCAL),
    "groq": Preset("openai", "https://api.groq.com/openai/v1", "GROQ_API_KEY", {"stream_usage": False, "native_n": False}),
    "mistral": Preset("openai", "https://api.mistral.ai/v1", "MISTRAL_API_KEY", {"reasoning_echo": "mistral", "stream_usage": False}),
    "together": Preset("openai", "https://api.together.xyz/v1", "TOGETHER_API_KEY", {"top_k": True}),
    "openrouter": Preset(
        "openai",
        "https://openrouter.ai/api/v1",
        "OPENROUTER_API_KEY",
        {"reasoning_style": "openrouter", "reasoning_echo": "reasoning", "top_k": True, "native_n": False},
    ),
    "deepseek": Preset("openai", "https://api.deepseek.com", "DEEPSEEK_API_KEY", {"reasoning_echo": "reasoning_content", "native_n": False}),
    "azure": Preset("openai", None, "AZURE_OPENAI_API_KEY", {"azure": True}),
    "anthropic": Preset(
        "anthropic", "https://api.anthropic.com", "ANTHROPIC_API_KEY",
        env_models=("claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-1"),
    ),
    "gemini": Preset(
        "gemini", "https://generativelanguage.googleapis.com", "GEMINI_API_KEY",
        env_models=("gemini-2.5-flash", "gemini-2.5-pro"),
    ),
    "ollama": Preset("ollama", "http://127.0.0.1:11434", None, base_url_env="OLLAMA_HOST"),
}


# The presets `llmrelay serve` configures from the environment when there is no config file.
_FROM_ENV = ("openai", "anthropic", "gemini", "ollama", "shimmy")


def providers_from_env(env: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, list[dict[str, str]]]]:
    """Provider configs and model groups for the usual environment variables (OPENAI_API_KEY,
    ANTHROPIC_API_KEY, GEMINI_API_KEY, OLLAMA_HOST, SHIMMY_BASE_URL), as raw config mappings."""
    providers: dict[str, Any] = {}
    models: dict[str, list[dict[str, str]]] = {}
    for kind in _FROM_ENV:
        preset = PRESETS[kind]
        if preset.base_url_env and env.get(preset.base_url_env):
            url = env[preset.base_url_env]
            providers[kind] = {"kind": kind, "base_url": url if "://" in url else f"http://{url}"}
        elif preset.api_key_env and preset.base_url_env is None and env.get(preset.api_key_env):
            providers[kind] = {"kind": kind, "api_key": env[preset.api_key_env]}
        else:
            continue
        for model in preset.env_models:
            models[model] = [{"provider": kind, "model": model}]
    return providers, models
