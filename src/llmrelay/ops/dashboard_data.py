"""What the web dashboard shows, read from the components that own it (read-only).

    data = await dashboard_data(relay.services, hours=24, reloader=gateway.reloader)

Spend comes from the usage ledger (shared by every worker and instance), budgets from the budget
manager, provider health from the router's deployment table, safety events and the chain's status
from the audit log. Each part degrades on its own: a missing component gives ``None`` and an
error in one query gives ``{"error": ...}`` for that part, never a failed page.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable
from typing import Any

from ..cost.ledger import UsageQuery
from ..services import Services

log = logging.getLogger("llmrelay.ops.dashboard")

_DIMENSIONS = {"model": "model_group", "provider": "provider", "key": "key_id", "user": "user_id", "team": "team"}
_LATENCY_SAMPLE = 20_000
_VERIFY_KEY = "ops.dashboard.verify"
_VERIFY_TTL_S = 30.0


def bucket_seconds(hours: float) -> int:
    """Chart resolution: about 60-150 points whatever the window."""
    for step in (60, 300, 900, 3600, 3 * 3600, 6 * 3600, 86400):
        if hours * 3600 / step <= 150:
            return step
    return 86400


def percentile(sorted_values: list[float], p: float) -> float | None:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return None
    rank = max(1, int(-(-p * len(sorted_values) // 100)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


async def _fetch(store: Any, sql: str, params: list[Any]) -> list[dict[str, Any]]:
    # Both ledger backends run "?" SQL through _fetch; the queries here only read usage_ledger.
    fetch = getattr(store, "_fetch", None)
    if fetch is None:
        raise RuntimeError("this ledger backend does not answer dashboard queries")
    rows: list[dict[str, Any]] = await fetch(sql, params)
    return rows


async def spend_series(store: Any, start: float, step: int) -> list[dict[str, Any]]:
    sql = ("SELECT CAST(ts AS BIGINT) / ? AS bucket, model_group, SUM(cost_usd) AS cost_usd, COUNT(*) AS requests "
           "FROM usage_ledger WHERE ts >= ? GROUP BY 1, 2 ORDER BY 1")
    rows = await _fetch(store, sql, [step, start])
    return [{"t": int(r["bucket"]) * step, "model": r["model_group"] or "", "cost_usd": float(r["cost_usd"] or 0),
             "requests": int(r["requests"])} for r in rows]


async def latency(store: Any, start: float) -> dict[str, Any]:
    sql = ("SELECT model_group, latency_ms, ttft_ms FROM usage_ledger WHERE ts >= ? AND latency_ms IS NOT NULL "
           "AND status IN ('ok', 'cached', 'joined') ORDER BY ts DESC LIMIT ?")
    rows = await _fetch(store, sql, [start, _LATENCY_SAMPLE])
    by_model: dict[str, list[float]] = {}
    ttft: list[float] = []
    for r in rows:
        by_model.setdefault(r["model_group"] or "", []).append(float(r["latency_ms"]))
        if r["ttft_ms"] is not None:
            ttft.append(float(r["ttft_ms"]))
    everything = sorted(v for vs in by_model.values() for v in vs)

    def pcts(values: list[float]) -> dict[str, Any]:
        return {"n": len(values), **{f"p{p}": percentile(values, p) for p in (50, 90, 99)}}

    return {"all": pcts(everything), "ttft": pcts(sorted(ttft)),
            "by_model": {m: pcts(sorted(vs)) for m, vs in sorted(by_model.items())}}


async def _part(name: str, work: Awaitable[Any]) -> Any:
    try:
        return await work
    except Exception as exc:
        log.warning("dashboard: %s failed: %s", name, exc)
        return {"error": f"{type(exc).__name__}: {exc}"}


async def usage(services: Services, start: float, step: int) -> dict[str, Any] | None:
    writer = services.ledger
    if writer is None:
        return None
    # Rows still queued in this process would be missing from the answer: write them first.
    await writer.flush()
    store = writer.store
    totals = await store.aggregate(UsageQuery(start=start))
    out: dict[str, Any] = {"totals": _clean(totals[0]) if totals else {}}
    for label, column in _DIMENSIONS.items():
        rows = await store.aggregate(UsageQuery(start=start, by=(column,), limit=50))
        out[f"by_{label}"] = [{"name": r[column], **_clean(r)} for r in rows]
    names = await _key_names(services)
    for row in out["by_key"]:
        row["label"] = names.get(row["name"] or "")
    # Savings: cache hits and requests joined to one in flight (their cost_saved_usd).
    saved = await store.aggregate(UsageQuery(start=start, by=("status",)))
    out["savings"] = {r["status"]: {"requests": int(r["requests"]), "saved_usd": float(r["cost_saved_usd"] or 0)}
                      for r in saved if r["status"] in ("cached", "joined")}
    out["series"] = await _part("series", spend_series(store, start, step))
    out["latency"] = await _part("latency", latency(store, start))
    return out


async def _key_names(services: Services) -> dict[str, str]:
    """Key id -> key name, so the page shows "checkout-service" rather than an id."""
    store = getattr(services.keys, "store", None)
    if store is None:
        return {}
    try:
        return {k.id: k.name for k in await store.list()}
    except Exception:  # names are a nicety; the ids still show
        return {}


def _clean(row: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in row.items():
        if k in _DIMENSIONS.values():
            continue
        out[k] = float(v) if k in ("cost_usd", "cost_saved_usd", "latency_ms") else int(v or 0)
    return out


async def audit_status(services: Services, limit: int = 30) -> dict[str, Any] | None:
    audit = services.audit
    if audit is None or not hasattr(audit, "store"):
        return None
    await audit.flush()
    # Verifying walks the whole chain: at most once per _VERIFY_TTL_S however often pages poll.
    cached = services.state.get(_VERIFY_KEY)
    now = time.monotonic()
    if cached is None or now - cached[0] > _VERIFY_TTL_S:
        cached = services.state[_VERIFY_KEY] = (now, (await audit.verify()).to_dict())
    # Walks back past the per-request summaries to the events (bounded; llmrelay.safety.audit_query).
    from ..safety.audit_query import recent_entries

    found = await recent_entries(audit.store, limit, ("safety", "config", "budget"), max_scanned=20_000)
    events = [{"id": e.id, "ts": e.ts, "kind": e.kind, "data": _data(e.data)} for e in found]
    return {"verify": cached[1], "events": events}


def _data(raw: str) -> Any:
    import orjson

    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw


async def dashboard_data(services: Services, *, hours: float = 24.0, reloader: Any = None) -> dict[str, Any]:
    """Everything the dashboard page shows, as one JSON-ready dict."""
    from ..routing.health import router_status

    now = time.time()
    start, step = now - hours * 3600, bucket_seconds(hours)
    budgets = services.budgets
    return {
        "now": now, "hours": hours, "step_s": step,
        "usage": await _part("usage", usage(services, start, step)),
        "budgets": await _part("budgets", budgets.status()) if budgets is not None else None,
        "providers": router_status(services),
        "audit": await _part("audit", audit_status(services)),
        "config": reloader.status() if reloader is not None else None,
        "models": list(services.settings.models),
    }
