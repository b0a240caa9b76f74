"""Privacy: a registry of per-user export/erase hooks (GDPR access and erasure), content storage
with PII redacted first, and retention.

Every store that holds user data registers two coroutines with the registry at
``services.privacy`` (attached in wiring); ``llmrelay privacy export --user U`` and ``privacy
erase --user U`` call them all:

    registry.register("ledger", export=ledger.export_user, erase=ledger.erase_user)
    data = await registry.export("alice")     # {"ledger": ..., "audit": ...}

Erasure of the audit log deletes the user's pseudonym salt and stored content; chain links stay,
so the chain still verifies, and what remains can no longer be tied to the person.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from .engine import Redactor, SafetyEngine
from .policy import Policy, policy_for_level

Hook = Callable[[str], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class _Hooks:
    export: Hook
    erase: Hook


class PrivacyRegistry:
    def __init__(self) -> None:
        self._hooks: dict[str, _Hooks] = {}

    def register(self, name: str, *, export: Hook, erase: Hook) -> None:
        """Register (or replace) the hooks of the store called ``name``."""
        self._hooks[name] = _Hooks(export, erase)

    @property
    def names(self) -> list[str]:
        return sorted(self._hooks)

    async def export(self, user: str) -> dict[str, Any]:
        return {name: await h.export(user) for name, h in sorted(self._hooks.items())}

    async def erase(self, user: str) -> dict[str, Any]:
        return {name: await h.erase(user) for name, h in sorted(self._hooks.items())}


# Content kept for audit or analytics: PII and secrets cut out whatever the caller's policy.
_STORAGE_POLICY: Policy = policy_for_level("strict")


def storable_content(text: str, engine: SafetyEngine) -> str:
    """``text`` with PII and secrets replaced by typed placeholders, fit for storage."""
    findings = [f for f in engine.scan(text, _STORAGE_POLICY, "output") if f.category in ("pii", "secret")]
    from .engine import redact

    return redact(text, findings, Redactor())
