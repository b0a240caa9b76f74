"""Price tables: the bundled genai-prices data and config overrides, resolved to plain numbers.

Prices come only from the data shipped inside the installed ``genai_prices`` package
(``genai_prices.data``); its auto-updater is never started, so pricing touches no network. Each
model's prices are read once, validated (finite, non-negative, tiers ascending) and turned into a
:class:`ModelPrices`, which prices a :class:`~llmrelay.types.Usage` with plain float arithmetic.

    >>> book = PriceBook()
    >>> p = book.lookup("openai", "gpt-4o-mini")
    >>> round(p.cost(Usage(input_tokens=1_000_000, output_tokens=0)), 4)
    0.15
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from ..config import PriceOverride
from ..types import Usage

# genai-prices price keys -> our rate fields (USD per million tokens).
_KEYS = {
    "input_mtok": "input",
    "output_mtok": "output",
    "cache_read_mtok": "cache_read",
    "cache_write_mtok": "cache_write",
    "cache_write_1h_mtok": "cache_write_1h",
    "output_reasoning_mtok": "reasoning",
}


class PriceDataError(ValueError):
    """A price in the data or the config is not a finite non-negative number."""


@dataclass(frozen=True, slots=True)
class Rates:
    """USD per million tokens; None means "billed as the parent kind" (cache read as input...)."""

    input: float
    output: float
    cache_read: float | None = None
    cache_write: float | None = None
    cache_write_1h: float | None = None
    reasoning: float | None = None

    def cost(self, u: Usage) -> float:
        cache_read = min(u.cache_read_tokens, u.input_tokens)
        cache_write = min(u.cache_write_tokens, u.input_tokens - cache_read)
        write_1h = min(u.cache_write_1h_tokens, cache_write)
        reasoning = min(u.reasoning_tokens, u.output_tokens)
        cw = self.input if self.cache_write is None else self.cache_write
        total = (
            (u.input_tokens - cache_read - cache_write) * self.input
            + cache_read * (self.input if self.cache_read is None else self.cache_read)
            + (cache_write - write_1h) * cw
            + write_1h * (cw if self.cache_write_1h is None else self.cache_write_1h)
            + (u.output_tokens - reasoning) * self.output
            + reasoning * (self.output if self.reasoning is None else self.reasoning)
        )
        return total / 1_000_000


@dataclass(frozen=True, slots=True)
class ModelPrices:
    """A model's prices: base rates, and rates that apply once the prompt passes a size."""

    model: str
    source: str
    base: Rates
    # (threshold, rates): when input_tokens > threshold, *all* tokens pay these rates (the
    # providers' "cliff" pricing above a context size). Ascending by threshold.
    tiers: tuple[tuple[int, Rates], ...] = ()
    context_window: int | None = None
    max_output_tokens: int | None = None

    def rates_for(self, input_tokens: int) -> Rates:
        for threshold, rates in reversed(self.tiers):
            if input_tokens > threshold:
                return rates
        return self.base

    def cost(self, usage: Usage) -> float:
        return self.rates_for(usage.input_tokens).cost(usage)


FREE = ModelPrices(model="*", source="self-hosted", base=Rates(0.0, 0.0))


def _num(value: Any, what: str) -> float:
    f = float(value)
    if not math.isfinite(f) or f < 0:
        raise PriceDataError(f"{what}: price {value!r} is not a finite non-negative number")
    return f


def prices_from_genai(model: Any, source: str, price: Any) -> ModelPrices:
    """Convert one genai-prices ``ModelPrice`` (possibly tiered) into :class:`ModelPrices`."""
    flat: dict[str, float] = {}
    tiered: dict[str, list[tuple[int, float]]] = {}
    for key, field_name in _KEYS.items():
        value = getattr(price, key, None)
        if value is None:
            continue
        what = f"{source} {model.id} {key}"
        if isinstance(value, Decimal | int | float):
            flat[field_name] = _num(value, what)
            continue
        flat[field_name] = _num(value.base, what)
        last = -1
        steps = []
        for tier in value.tiers:
            if tier.start <= last:
                raise PriceDataError(f"{what}: tiers are not in ascending order")
            last = tier.start
            steps.append((int(tier.start), _num(tier.price, what)))
        tiered[field_name] = steps
    if "input" not in flat or "output" not in flat:
        raise PriceDataError(f"{source} {model.id}: no per-token input/output price")
    base = Rates(**flat)  # type: ignore[arg-type]
    thresholds = sorted({t for steps in tiered.values() for t, _ in steps})
    tiers = []
    for threshold in thresholds:
        fields = dict(flat)
        for name, steps in tiered.items():
            for start, value in steps:
                if start <= threshold:
                    fields[name] = value
        tiers.append((threshold, Rates(**fields)))  # type: ignore[arg-type]
    return ModelPrices(model.id, source, base, tuple(tiers), model.context_window, None)


def prices_from_override(model: str, o: PriceOverride) -> ModelPrices:
    rates = Rates(
        input=o.input_per_mtok,
        output=o.output_per_mtok,
        cache_read=o.cache_read_per_mtok,
        cache_write=o.cache_write_per_mtok,
        cache_write_1h=o.cache_write_1h_per_mtok,
        reasoning=o.reasoning_per_mtok,
    )
    return ModelPrices(model, "config", rates, max_output_tokens=o.max_output_tokens)


class PriceBook:
    """Finds the prices for (price-list id, model), from the bundled data only; results cached."""

    def __init__(self) -> None:
        from genai_prices.data import providers  # the bundled snapshot: no network

        self._providers = {p.id: p for p in providers}
        self._all = list(providers)
        self._cache: dict[tuple[str, str, tuple[tuple[str, str], ...], str], ModelPrices | None] = {}

    def provider_ids(self) -> list[str]:
        return list(self._providers)

    def lookup(
        self,
        price_id: str | None,
        model: str,
        context: Mapping[str, str] | None = None,
        when: float | None = None,
    ) -> ModelPrices | None:
        """Prices for ``model`` on price list ``price_id`` (None: any list that knows the model),
        with request variants (``{"service_tier": "flex"}``, ``{"processing": "batch"}``)."""
        at = datetime.fromtimestamp(when, UTC) if when is not None else datetime.now(UTC)
        ctx = tuple(sorted((context or {}).items()))
        key = (price_id or "", model, ctx, at.strftime("%Y-%m-%d"))
        if key not in self._cache:
            self._cache[key] = self._find(price_id, model, dict(ctx), at)
        return self._cache[key]

    def _find(self, price_id: str | None, model: str, ctx: dict[str, str], at: datetime) -> ModelPrices | None:
        candidates = [self._providers[price_id]] if price_id in self._providers else []
        if price_id is None:
            candidates = [p for p in self._all if p.model_match is None or p.model_match.is_match(model.lower())]
        for provider in candidates:
            info = provider.find_model(model, all_providers=self._all)
            if info is None:
                continue
            price = info.get_prices(at, ctx or None)
            return prices_from_genai(info, f"genai-prices:{provider.id}", price)
        return None

    def models(self, price_id: str) -> list[Any]:
        p = self._providers.get(price_id)
        return list(p.models) if p else []
