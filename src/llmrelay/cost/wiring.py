"""Attach pricing, the usage ledger and budgets to a :class:`~llmrelay.services.Services`.

Long-lived parts are kept in ``services.state`` so a reload hands them over: the ledger writer
(per storage URL; each generation acquires it and closing the last one drains it), the budget
counters (in memory they *are* the budget state) and the alerter.
"""

from __future__ import annotations

from typing import Any

from ..services import Services
from ..shared_state.counters import open_shared_counters
from .alerts import Alerter
from .budgets import BudgetManager
from .discount_spend import SharedSpend
from .estimate import CostEstimator
from .ledger import LedgerWriter, open_ledger
from .pricing import PricingEngine
from .tokens import TokenCounter


def wire_cost(services: Services) -> None:
    s, state = services.settings, services.state
    # Redis behind the process's circuit, with local fallback by redis.on_unavailable (shared_state).
    slot = f"cost.counters:{s.redis.url}:{s.redis.on_unavailable}"
    counters = state.get(slot)
    if counters is None:
        counters = state[slot] = open_shared_counters(services)
    spend = None
    if s.redis.url and s.pricing.volume_discounts:
        # Volume tiers on the fleet's spend, in the same shared counters as the budgets.
        spend = state.setdefault(f"pricing.spend:{slot}", SharedSpend(counters))
        services.on_close.append(spend.aclose)
    services.pricing = PricingEngine(s.pricing, metrics=services.metrics, clock=services.clock, state=state,
                                     spend=spend)
    if spend is not None:
        services.on_start.append(services.pricing.start)
    exact = s.pricing.exact_token_counts
    counter: TokenCounter = state.setdefault(f"cost.tokens:{exact}", TokenCounter(exact=exact))
    state["cost.estimator"] = CostEstimator(services.pricing, counter, s)
    _wire_ledger(services)
    alerter = Alerter(s.alerts, metrics=services.metrics, audit=services.audit)
    services.budgets = BudgetManager(s, counters, clock=services.clock, alerter=alerter, metrics=services.metrics)
    services.on_close.append(alerter.aclose)


def _wire_ledger(services: Services) -> None:
    s = services.settings
    key = f"cost.ledger:{s.storage.url}"
    writer: LedgerWriter | None = services.state.get(key)
    if writer is None or writer.closed:
        store = open_ledger(s.storage.url, timezone=s.pricing.timezone)
        retention = s.storage.retention_days * 86400.0 if s.storage.retention_days else None
        writer = LedgerWriter(store, batch_size=s.storage.ledger_batch_size, flush_s=s.storage.ledger_flush_s,
                              metrics=services.metrics, retention_s=retention, clock=services.clock)
        services.state[key] = writer
    writer.acquire()
    services.ledger = writer
    services.on_start.append(writer.start)
    w: Any = writer
    services.on_close.append(w.aclose)
