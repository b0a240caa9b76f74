"""The pricing engine (``services.pricing``): turns a request's usage into its cost.

The router calls ``pricing.apply(ctx)`` whenever usage arrives; it sets ``ctx.cost_usd`` and
``ctx.unpriced`` from ``ctx.provider`` (config name), ``ctx.provider_kind``, ``ctx.upstream_model``
and ``ctx.usage``. Lookup order: ``pricing.overrides["provider/model"]``, then
``overrides["model"]``, then self-hosted kinds (free), then the bundled genai-prices data through
the provider kind's price list (``llmrelay.providers.pricing_ids``). A model found nowhere is
*unpriced*: it costs 0 but is flagged (ctx, ledger, metric) and warned about once, never silently $0.

    engine = PricingEngine(settings.pricing)
    ctx.provider, ctx.provider_kind, ctx.upstream_model = "oa", "openai", "gpt-4o-mini"
    ctx.usage = Usage(input_tokens=1000, output_tokens=200)
    engine.apply(ctx)          # ctx.cost_usd == 0.00027

Service tiers and batch processing come from ``ctx.notes["service_tier"]`` / ``ctx.notes["processing"]``.
Volume discounts reduce the price once spend in the discount period passes a threshold: the
fleet's spend when ``redis.url`` is set (:mod:`llmrelay.cost.discount_spend`), else this process's.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..config import PricingConfig
from ..context import RequestContext
from ..providers.pricing_ids import is_self_hosted, pricing_id
from ..types import Usage
from .discount_spend import LocalSpend
from .periods import period_of
from .prices import FREE, ModelPrices, PriceBook, prices_from_override

log = logging.getLogger("llmrelay.cost")

# Request fields that select a price variant in the price data.
VARIANT_NOTES = ("service_tier", "processing")


@dataclass(frozen=True, slots=True)
class Quote:
    """A priced usage: the USD cost and how it was priced."""

    cost_usd: float
    prices: ModelPrices | None
    discount: float = 0.0

    @property
    def unpriced(self) -> bool:
        return self.prices is None


class PricingEngine:
    def __init__(
        self,
        config: PricingConfig | None = None,
        *,
        book: PriceBook | None = None,
        metrics: Any = None,
        clock: Any = None,
        state: dict[str, Any] | None = None,
        spend: Any = None,
    ) -> None:
        self.config = config or PricingConfig()
        self.book = book or PriceBook()
        self.metrics = metrics
        self.clock = clock
        state = {} if state is None else state
        # Outlive reloads: "warn once per model" and period spend are per process, not per config.
        # ``spend`` (llmrelay.cost.discount_spend) is the fleet's when redis.url is set (cost.wiring).
        self._warned: set[tuple[str, str]] = state.setdefault("pricing.warned", set())
        self._spend: Any = spend if spend is not None else state.setdefault("pricing.spend", LocalSpend())
        self._overrides = {k: prices_from_override(k, v) for k, v in self.config.overrides.items()}
        rate = 1.0 if self.config.currency == "USD" else self.config.exchange_rates.get(self.config.currency)
        if rate is None or rate <= 0:
            raise ValueError(
                f"pricing.currency is {self.config.currency!r} but pricing.exchange_rates has no positive "
                f"rate for it; add e.g. exchange_rates: {{{self.config.currency}: 0.92}}"
            )
        self.rate = rate

    # ---- lookup --------------------------------------------------------------------------------

    def prices(
        self,
        provider: str | None,
        kind: str | None,
        model: str,
        context: Mapping[str, str] | None = None,
    ) -> ModelPrices | None:
        """The prices in force for ``model`` on the provider named ``provider`` (of ``kind``)."""
        if provider and (o := self._overrides.get(f"{provider}/{model}")):
            return o
        if (o := self._overrides.get(model)) is not None:
            return o
        if is_self_hosted(kind):
            return FREE
        pid = pricing_id(kind)
        if pid is None and kind is not None:
            return None
        return self.book.lookup(pid, model, context, self._now())

    def _now(self) -> float:
        import time

        return self.clock.time() if self.clock is not None else time.time()

    # ---- pricing -------------------------------------------------------------------------------

    def quote(
        self,
        provider: str | None,
        kind: str | None,
        model: str,
        usage: Usage,
        context: Mapping[str, str] | None = None,
    ) -> Quote:
        """Price ``usage`` without recording it (estimates, reports)."""
        prices = self.prices(provider, kind, model, context)
        if prices is None:
            return Quote(0.0, None)
        return Quote(prices.cost(usage), prices)

    def apply(self, ctx: RequestContext) -> None:
        """Set ``ctx.cost_usd`` / ``ctx.unpriced`` from ``ctx.usage`` (cumulative, so idempotent
        for the cost; the period spend counts the difference from the last call)."""
        if ctx.usage is None or ctx.upstream_model is None:
            return
        context = {k: str(ctx.notes[k]) for k in VARIANT_NOTES if k in ctx.notes}
        q = self.quote(ctx.provider, ctx.provider_kind, ctx.upstream_model, ctx.usage, context)
        if q.unpriced:
            self._flag_unpriced(ctx)
            ctx.unpriced, ctx.cost_usd = True, 0.0
            return
        cost = q.cost_usd
        if self.config.volume_discounts and cost:
            # Usage is cumulative: count only what this call adds since the last apply().
            raw = cost
            cost = self._discounted(raw, ctx.notes.get("pricing.counted", 0.0))
            ctx.notes["pricing.counted"] = raw
        ctx.unpriced, ctx.cost_usd = False, cost

    def _discounted(self, cost: float, counted: float) -> float:
        now = self._now()
        period = period_of(self.config.discount_period, now, self.config.timezone)
        before = self._spend.add(period.label, cost - counted, period.end - now + 86400)
        discount = 0.0
        for tier in self.config.volume_discounts:
            if before >= tier.above_usd:
                discount = max(discount, tier.discount)
        return cost * (1.0 - discount)

    async def start(self) -> None:
        """Read the fleet's spend in the current discount period (a start-up hook), so the first
        calls of a new process already get the tier the fleet has reached."""
        refresh = getattr(self._spend, "refresh", None)
        if refresh is None or not self.config.volume_discounts:
            return
        now = self._now()
        period = period_of(self.config.discount_period, now, self.config.timezone)
        try:
            await refresh(period.label, period.end - now + 86400)
        except Exception as exc:  # Redis down: tiers start from this process's spend, as without Redis
            log.warning("volume-discount spend could not be read from Redis: %s", exc)

    def _flag_unpriced(self, ctx: RequestContext) -> None:
        key = (ctx.provider or "", ctx.upstream_model or "")
        if self.metrics is not None:
            self.metrics.unpriced.labels(provider=key[0], model=key[1]).inc()
        if key not in self._warned:
            self._warned.add(key)
            log.warning(
                "no price known for model %r on provider %r: its calls are recorded as unpriced "
                "(cost 0); add pricing.overrides[%r] to the config to price them",
                key[1], key[0], f"{key[0]}/{key[1]}",
            )

    # ---- display -------------------------------------------------------------------------------

    def convert(self, usd: float) -> float:
        """USD into the configured currency."""
        return usd * self.rate

    @property
    def currency(self) -> str:
        return self.config.currency
