"""Provider adapters. Nothing outside this package names a specific provider."""

from .base import Capabilities, HTTPProvider, Provider, ProviderSettings
from .registry import provider_class, register

__all__ = ["Capabilities", "HTTPProvider", "Provider", "ProviderSettings", "provider_class", "register"]
