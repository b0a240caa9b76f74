"""Usage analytics: spend grouped by any dimension and period, trend, month-end forecast and
recommendations with the money they would save. The CLI (``llmrelay usage report``) and the admin
API (``GET /admin/usage``) both call :func:`usage_report`.

    report = await usage_report(store, settings, engine, since="7d", by=("model", "day"))
    report.rows, report.total, report.forecast_month_usd, report.recommendations
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field, replace
from typing import Any

from ..config import Settings
from ..types import Usage
from .ledger import LedgerStore, UsageQuery
from .ledger_sql import GROUPABLE
from .periods import day_label, period_of
from .pricing import PricingEngine

_SINCE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
# Report dimension names -> ledger columns.
DIMENSIONS = {"model": "model", "provider": "provider", "key": "key_id", "user": "user_id", "team": "team",
              "day": "day", "group": "model_group", "status": "status", "session": "session"}


def parse_since(text: str) -> tuple[float, bool]:
    """``"7d"`` -> (seconds, whether it is whole days)."""
    m = _SINCE.match(text)
    if not m:
        raise ValueError(f"--since {text!r}: use a number and a unit, like 30m, 24h, 7d or 2w")
    value, unit = float(m.group(1)), m.group(2)
    return value * _UNIT[unit], unit in "dw" and value.is_integer()


@dataclass(frozen=True, slots=True)
class Recommendation:
    kind: str
    message: str
    saving_usd: float
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Report:
    since: str
    by: tuple[str, ...]
    rows: list[dict[str, Any]]
    total: dict[str, Any]
    trend: list[dict[str, Any]]
    month_to_date_usd: float
    forecast_month_usd: float
    recommendations: list[Recommendation]
    currency: str = "USD"
    # Paging: ``rows`` are the ``limit`` costliest groups from ``offset`` on, of ``groups`` in all.
    groups: int = 0
    limit: int = 0
    offset: int = 0

    @property
    def truncated(self) -> bool:
        return self.offset + len(self.rows) < self.groups

    def to_dict(self) -> dict[str, Any]:
        return {"since": self.since, "by": list(self.by), "currency": self.currency, "rows": self.rows,
                "groups": self.groups, "limit": self.limit, "offset": self.offset, "truncated": self.truncated,
                "total": self.total, "trend": self.trend, "month_to_date_usd": self.month_to_date_usd,
                "forecast_month_usd": self.forecast_month_usd,
                "recommendations": [{"kind": r.kind, "message": r.message, "saving_usd": r.saving_usd,
                                     **r.detail} for r in self.recommendations]}


# Reports are pages of the costliest groups: "by user, day" over a month can be 60,000 groups, which
# no table, chart or JSON consumer wants at once. The default page is 1,000 rows; a page is at most
# MAX_LIMIT; ``offset`` walks further (``usage export`` writes the raw rows for the complete set).
DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000


def _query(since: str, by: tuple[str, ...], now: float, tz: str, filters: dict[str, str]) -> UsageQuery:
    seconds, whole_days = parse_since(since)
    cols = tuple(DIMENSIONS.get(b, b) for b in by)
    start = now - seconds
    days = None
    if whole_days:
        # Whole calendar days: today and the N-1 before it, answered from the daily roll-ups.
        first = period_of("day", now - seconds + 86400, tz)
        start, days = first.start, (first.label, day_label(now, tz))
    return UsageQuery(start=start, by=cols, filters=tuple(sorted(filters.items())), days=days)


async def usage_report(
    store: LedgerStore,
    settings: Settings,
    engine: PricingEngine | None = None,
    *,
    since: str = "7d",
    by: tuple[str, ...] = ("model",),
    filters: dict[str, str] | None = None,
    now: float | None = None,
    recommend: bool = True,
    limit: int = DEFAULT_LIMIT,
    offset: int = 0,
) -> Report:
    if not 1 <= limit <= MAX_LIMIT or offset < 0:
        raise ValueError(f"limit must be 1..{MAX_LIMIT} and offset 0 or more (got limit={limit}, offset={offset})")
    now = time.time() if now is None else now
    tz = settings.pricing.timezone
    filters = {DIMENSIONS.get(k, k): v for k, v in (filters or {}).items()}
    q = replace(_query(since, by, now, tz, filters), limit=limit, offset=offset)
    rows = [_shape(r) for r in await store.aggregate(q)]
    # Counting groups is a second pass: only needed when this page may not be the last.
    groups = await store.count_groups(q) if by and len(rows) == limit else offset + len(rows)
    total_rows = await store.aggregate(UsageQuery(start=q.start, filters=q.filters, days=q.days))
    total = _shape(total_rows[0]) if total_rows else {}
    trend = sorted((_shape(r) for r in await store.aggregate(_query(since if q.days else "30d", ("day",), now, tz, filters))),
                   key=lambda r: r["day"])
    month = period_of("month", now, tz)
    mtd_rows = await store.aggregate(UsageQuery(start=month.start, days=(month.label + "-01", day_label(now, tz))))
    mtd = float(mtd_rows[0]["cost_usd"] or 0) if mtd_rows else 0.0
    elapsed = max(month.elapsed_fraction(now), 1 / (31 * 24))
    recs = await recommendations(store, settings, engine, q.start, q.days) if recommend and engine else []
    return Report(since, by, rows, total, trend, mtd, mtd / elapsed, recs, engine.currency if engine else "USD",
                  groups, limit, offset)


def _shape(r: dict[str, Any]) -> dict[str, Any]:
    # A missing measure is 0; a missing dimension (no key, no user) is "", as the roll-ups store it,
    # so a group reads the same whichever table answered.
    out: dict[str, Any] = {k: (v if v is not None else "" if k in GROUPABLE or k == "day" else 0)
                           for k, v in r.items()}
    n = out.get("requests") or 0
    out["avg_latency_ms"] = round(out.pop("latency_ms", 0) / n, 2) if n else 0.0
    out["cost_usd"] = round(float(out.get("cost_usd") or 0.0), 8)
    return out


async def recommendations(
    store: LedgerStore, settings: Settings, engine: PricingEngine, start: float,
    days: tuple[str, str] | None = None,
) -> list[Recommendation]:
    """What would have cost less since ``start`` (whole ``days``: read from the daily roll-ups)."""
    kinds = {name: p.kind for name, p in settings.providers.items()}
    by_model = UsageQuery(start=start, by=("provider", "model", "model_group"), days=days)
    out = _cheaper_models(await store.aggregate(by_model), settings, engine, kinds)
    for r in await store.repeated("prompt_hash", start, 2, 20):
        # Exactly what the repeats cost: a cache keeping answers a day would have served them.
        saving = float(r["cost_usd"] or 0)
        if saving > 0:
            out.append(Recommendation("response_cache", f"{r['n']} identical prompts to {r['model']}, each within a "
                                      "day of the last: the response cache (cache.enabled: true, ttl_s up to "
                                      "86400) would answer all but the first", saving,
                                      {"prompt_hash": r["hash"], "count": r["n"]}))
    for r in await store.repeated("prefix_hash", start, 3, 20):
        prices = engine.prices(r["provider"], kinds.get(r["provider"] or ""), r["model"] or "")
        if prices is None or r["cache_read_tokens"] or prices.base.cache_read is None:
            continue
        per_token = (prices.base.input - prices.base.cache_read) / 1e6
        saving = r["repeats"] * (r["prefix_tokens"] or 0) * per_token
        if saving > 0:
            out.append(Recommendation("prompt_caching", f"{r['n']} requests to {r['model']} share a ~{r['prefix_tokens']}"
                                      "-token system prompt/tools prefix that is never read from the provider's "
                                      "prompt cache: mark it cacheable", saving, {"prefix_hash": r["hash"]}))
    return sorted(out, key=lambda r: -r.saving_usd)


def _cheaper_models(rows: list[dict[str, Any]], settings: Settings, engine: PricingEngine,
                    kinds: dict[str, str]) -> list[Recommendation]:
    out = []
    for r in rows:
        cost = float(r["cost_usd"] or 0)
        if not cost or not r["model_group"]:
            continue
        usage = Usage(input_tokens=int(r["input_tokens"] or 0), output_tokens=int(r["output_tokens"] or 0),
                      cache_read_tokens=int(r["cache_read_tokens"] or 0))
        best: tuple[float, str] | None = None
        for dep in settings.models.get(r["model_group"], []):
            if dep.model == r["model"] and dep.provider == r["provider"]:
                continue
            q = engine.quote(dep.provider, kinds.get(dep.provider), dep.model, usage)
            if not q.unpriced and q.cost_usd < cost and (best is None or q.cost_usd < best[0]):
                best = (q.cost_usd, f"{dep.provider}/{dep.model}")
        if best is not None:
            out.append(Recommendation("cheaper_model", f"{r['model_group']}: the same tokens on {best[1]} would cost "
                                      f"${best[0]:.4f} instead of ${cost:.4f} on {r['provider']}/{r['model']}",
                                      cost - best[0], {"from": f"{r['provider']}/{r['model']}", "to": best[1]}))
    return out
