"""Which price list each provider kind is billed from: the one place that maps provider kinds to
genai-prices provider ids, so ``llmrelay.cost`` never names a provider.

A kind mapped to ``None`` is self-hosted: it costs nothing per token, which is a known price (0),
not a missing one. A kind absent from both tables has no published price list and is flagged
unpriced unless the config gives an override.

    >>> pricing_id("gemini")
    'google'
"""

from __future__ import annotations

PRICING_IDS: dict[str, str] = {
    "openai": "openai",
    "azure": "azure",
    "anthropic": "anthropic",
    "gemini": "google",
    "groq": "groq",
    "mistral": "mistral",
    "together": "together",
    "openrouter": "openrouter",
    "deepseek": "deepseek",
    "cohere": "cohere",
}

# Servers that run on the user's own hardware: no per-token bill.
SELF_HOSTED: frozenset[str] = frozenset({"ollama", "shimmy", "vllm", "llamacpp", "lmstudio"})


def pricing_id(kind: str | None) -> str | None:
    """The genai-prices provider id for a provider kind, or None when there is none."""
    return PRICING_IDS.get(kind or "")


def is_self_hosted(kind: str | None) -> bool:
    return (kind or "") in SELF_HOSTED
