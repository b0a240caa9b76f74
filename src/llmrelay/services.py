"""The shared parts the layers are built with: settings, clock, providers, stores, pricing, metrics.

A :class:`Services` is built once per settings generation by the :class:`~llmrelay.relay.Relay`.
On a reload a new one is built; providers whose config did not change are carried over, so their
connection pools survive.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .clock import Clock, SystemClock
from .config import ProviderConfig, Settings
from .providers.base import Provider, ProviderSettings
from .providers.presets import PRESETS
from .providers.registry import provider_class
from .transport import PoolLimits, Transport


def provider_settings(name: str, cfg: ProviderConfig, env: Mapping[str, str] | None = None) -> ProviderSettings:
    """Resolve a provider's config against its preset: default base URL, key from the env."""
    env = os.environ if env is None else env
    preset = PRESETS.get(cfg.kind)
    api_key = cfg.api_key
    if api_key is None and preset and preset.api_key_env:
        api_key = env.get(preset.api_key_env) or None
    options: dict[str, Any] = {**(preset.options if preset else {}), **cfg.options}
    if cfg.api_version:
        options["api_version"] = cfg.api_version
    if cfg.deployment:
        options["deployment"] = cfg.deployment
    return ProviderSettings(
        name=name,
        kind=cfg.kind,
        base_url=cfg.base_url or (preset.base_url if preset else None),
        api_key=api_key,
        headers=dict(cfg.headers),
        timeout_s=cfg.timeout_s,
        stall_timeout_s=cfg.stall_timeout_s,
        limits=PoolLimits(max_connections=cfg.max_connections, connect_timeout_s=cfg.connect_timeout_s),
        options=options,
    )


def build_provider(name: str, cfg: ProviderConfig, transport: Transport | None = None) -> Provider:
    cls = provider_class(cfg.kind)
    settings = provider_settings(name, cfg)
    if transport is not None:
        return cls(settings, transport)  # type: ignore[call-arg]
    return cls(settings)


@dataclass
class Services:
    settings: Settings
    clock: Clock = field(default_factory=SystemClock)
    providers: dict[str, Provider] = field(default_factory=dict)
    # Set by the parts that own them; layers read what they need and skip what is absent.
    pricing: Any = None
    stores: Any = None
    metrics: Any = None
    audit: Any = None
    # Virtual keys: the llmrelay.keys.Authenticator (set by wiring).
    keys: Any = None
    # Per-user export/erase hooks of every store holding user data (llmrelay.safety.privacy).
    privacy: Any = None
    # The usage-ledger writer and the budget manager (llmrelay.cost), when configured.
    ledger: Any = None
    budgets: Any = None
    # Long-lived components that outlive one settings generation (circuit breakers, counters...),
    # keyed by name, so a reload can hand them to the new generation.
    state: dict[str, Any] = field(default_factory=dict)
    # Background work owned by components: started by Relay.start(), stopped by Relay.aclose()
    # (e.g. the ledger writer drains its queue here on a graceful shutdown).
    on_start: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    on_close: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    @classmethod
    def build(
        cls,
        settings: Settings,
        *,
        clock: Clock | None = None,
        transports: Mapping[str, Transport] | None = None,
        previous: Services | None = None,
    ) -> Services:
        providers: dict[str, Provider] = {}
        for name, cfg in settings.providers.items():
            old = previous.providers.get(name) if previous else None
            if old is not None and previous is not None and previous.settings.providers.get(name) == cfg:
                providers[name] = old
            else:
                providers[name] = build_provider(name, cfg, (transports or {}).get(name))
        return cls(
            settings=settings,
            clock=clock or (previous.clock if previous else SystemClock()),
            providers=providers,
            state=previous.state if previous else {},
        )

    async def aclose(self, keep: Mapping[str, Provider] | None = None) -> None:
        """Close providers, except those handed over to a newer generation."""
        for close in reversed(self.on_close):
            await close()
        kept = {id(p) for p in (keep or {}).values()}
        for p in self.providers.values():
            if id(p) not in kept:
                await p.aclose()
