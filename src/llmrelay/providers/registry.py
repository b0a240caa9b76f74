"""Which class serves each provider ``kind``.

Built-in providers register through the same hook as third-party plugins: an entry point in the
``llmrelay.providers`` group naming a :class:`~llmrelay.providers.base.Provider` subclass, or a call
to :func:`register`. Built-ins are imported lazily, so a gateway that only talks to OpenAI never
imports the Gemini adapter.

    >>> from llmrelay.providers.registry import provider_class
    >>> provider_class("openai").kind
    'openai'
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

from ..errors import ConfigError
from .base import Provider

# kind -> "module:Class"; OpenAI-compatible presets all resolve to the OpenAI adapter.
_BUILTIN: dict[str, str] = {
    "openai": "llmrelay.providers.openai:OpenAIProvider",
    "anthropic": "llmrelay.providers.anthropic:AnthropicProvider",
    "gemini": "llmrelay.providers.gemini:GeminiProvider",
    "ollama": "llmrelay.providers.ollama:OllamaProvider",
    "fake": "llmrelay.testing:FakeProvider",
}

_registered: dict[str, type[Provider]] = {}


def register(cls: type[Provider], kind: str | None = None) -> type[Provider]:
    """Register a provider class for its ``kind`` (usable as a decorator)."""
    _registered[kind or cls.kind] = cls
    return cls


def _from_entry_points(kind: str) -> type[Provider] | None:
    for ep in entry_points(group="llmrelay.providers"):
        if ep.name == kind:
            cls = ep.load()
            return register(cls, kind)
    return None


def known_kinds() -> list[str]:
    from .presets import PRESETS

    names = set(_BUILTIN) | set(PRESETS) | set(_registered)
    names |= {ep.name for ep in entry_points(group="llmrelay.providers")}
    return sorted(names)


def provider_class(kind: str) -> type[Provider]:
    """The class for ``kind``; raises ConfigError naming the known kinds if there is none."""
    cls = _registered.get(kind)
    if cls is not None:
        return cls
    from .presets import PRESETS

    target = _BUILTIN.get(kind) or (_BUILTIN[PRESETS[kind].adapter] if kind in PRESETS else None)
    if target is not None:
        module, _, name = target.partition(":")
        cls = getattr(importlib.import_module(module), name)
        return cls
    cls = _from_entry_points(kind)
    if cls is not None:
        return cls
    raise ConfigError(f"unknown provider kind {kind!r}; known kinds: {', '.join(known_kinds())}")
