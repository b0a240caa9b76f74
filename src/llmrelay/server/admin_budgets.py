"""``/admin/budgets``: every budget in force, and the emergency brake.

``GET /admin/budgets`` lists the config's budgets and every virtual key's own budget, each for its
current period: ``limit_usd``; ``counted_usd``, what the budget counter holds and enforces (settled
spend plus reservations of calls still running); ``spent_usd``, the settled spend in the usage
ledger for that scope and period; ``reserved_usd`` (counted minus spent, at least 0);
``remaining_usd`` and ``fraction`` (of the counted amount). A config budget with ``id: "*"`` applies
to each team / user / key / ... separately: it is listed once per subject that spent in the period.
Counter keys come from the budget manager itself (:meth:`BudgetManager.applicable`), so this view
reads exactly the counters that requests reserve against.

``POST /admin/budgets/brake/reset`` lifts a tripped emergency brake (audited).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..context import RequestContext
from ..cost.budgets import MICRO, Applied, BudgetManager
from ..cost.ledger import UsageQuery
from ._asgi import Request, Response, json_response
from .admin import audit_action, flush_ledger
from .auth import require_admin

if TYPE_CHECKING:
    from .app import Gateway

# Budget scope -> the ledger column its subject is recorded in.
_COLUMN = {"team": "team", "key": "key_id", "user": "user_id", "session": "session", "model": "model_group"}
# Subjects listed per wildcard budget, most spending first.
MAX_SUBJECTS = 200


def register(gw: Gateway) -> None:
    from .openai_api import WIRE

    gw.route("GET", "/admin/budgets", WIRE, lambda req: budgets(gw, req))
    gw.route("POST", "/admin/budgets/brake/reset", WIRE, lambda req: reset_brake(gw, req))
    # The spelling `llmrelay budgets reset-brake` points to.
    gw.route("POST", "/admin/budgets/reset-brake", WIRE, lambda req: reset_brake(gw, req))


def _context(scope: str, subject: str | None, key: Any = None) -> RequestContext:
    """A context that falls under budgets of ``scope`` for ``subject`` (and under global ones)."""
    ctx = RequestContext()
    if key is not None:
        ctx.key, ctx.key_id = key, key.id
    elif scope == "key":
        ctx.key_id = subject
    elif scope == "model":
        ctx.model_group = subject
    elif scope in ("team", "user", "session"):
        setattr(ctx, scope, subject)
    return ctx


async def _subjects(store: Any, column: str, start: float) -> list[str]:
    rows = await store.aggregate(UsageQuery(start=start, by=(column,), limit=MAX_SUBJECTS))
    return [str(r[column]) for r in rows if r.get(column)]


async def in_force(manager: BudgetManager, keys: list[Any], store: Any, now: float) -> list[tuple[Applied, str]]:
    """Every (budget, source) pair in force at ``now``; source is "config" or "key"."""
    contexts: list[RequestContext] = []
    for rule in manager.rules:
        if rule.scope == "global" or rule.id != "*":
            contexts.append(_context(rule.scope, None if rule.scope == "global" else rule.id))
        elif store is not None:
            start = period_start(manager, rule.period, now)
            contexts += [_context(rule.scope, s) for s in await _subjects(store, _COLUMN[rule.scope], start)]
    contexts += [_context("key", k.id, key=k) for k in keys if k.budget_usd and not k.revoked]
    seen: set[tuple[str, int, str, str]] = set()
    out: list[tuple[Applied, str]] = []
    for ctx in contexts:
        for a in manager.applicable(ctx):
            ident = (a.key, a.limit, a.rule.scope, a.rule.id)
            if ident not in seen:
                seen.add(ident)
                out.append((a, "config" if a.rule in manager.rules else "key"))
    return out


def period_start(manager: BudgetManager, period: str, now: float) -> float:
    from ..cost.periods import period_of

    return period_of(period, now, manager.tz).start


async def _spent(store: Any, a: Applied) -> float | None:
    if store is None:
        return None
    filters = () if a.rule.scope == "global" else ((_COLUMN[a.rule.scope], a.subject),)
    rows = await store.aggregate(UsageQuery(start=a.period.start, filters=filters))
    return float(rows[0]["cost_usd"] or 0.0) if rows else 0.0


async def budget_rows(manager: BudgetManager, keys: list[Any], store: Any, now: float) -> list[dict[str, Any]]:
    pairs = await in_force(manager, keys, store, now)
    counted = await manager.counters.get([a.key for a, _ in pairs]) if pairs else []
    rows = []
    for (a, source), used in zip(pairs, counted, strict=True):
        limit, counted_usd = a.limit / MICRO, used / MICRO
        spent = await _spent(store, a)
        spent = None if spent is None else round(spent, 8)
        rows.append({
            "scope": a.rule.scope, "id": a.subject, "source": source, "period": a.rule.period,
            "period_label": a.period.label, "period_start": a.period.start,
            "period_end": None if a.rule.period == "total" else a.period.end,
            "limit_usd": limit, "counted_usd": counted_usd, "spent_usd": spent,
            "reserved_usd": None if spent is None else round(max(0.0, counted_usd - spent), 6),
            "remaining_usd": round(max(0.0, limit - counted_usd), 6),
            "fraction": round(counted_usd / limit, 6) if limit else 1.0,
            "alert_at": list(a.rule.alert_at),
        })
    return rows


async def budgets(gw: Gateway, req: Request) -> Response:
    await require_admin(gw.auth, req.headers)
    services = gw.relay.services
    manager: BudgetManager | None = services.budgets
    if manager is None:
        return json_response({"object": "list", "data": [], "brake": {"configured": False, "tripped": False}})
    # Counters answer even when the ledger is down; spent_usd then lacks the rows still queued.
    pending = await flush_ledger(gw)
    store = services.ledger.store if services.ledger is not None else None
    rows = await budget_rows(manager, await gw.auth.store.list(), store, services.clock.time())
    return json_response({"object": "list", "data": rows, "brake": await brake_state(manager),
                          "ledger_pending_rows": pending})


async def brake_state(manager: BudgetManager) -> dict[str, Any]:
    brake = manager.brake
    return {"configured": brake is not None, "tripped": await manager.brake_tripped(),
            "max_usd": brake.max_usd if brake else None, "window_s": brake.window_s if brake else None}


async def reset_brake(gw: Gateway, req: Request) -> Response:
    await require_admin(gw.auth, req.headers)
    manager: BudgetManager | None = gw.relay.services.budgets
    if manager is None:
        return json_response({"reset": False, "brake": {"configured": False, "tripped": False}})
    was = await manager.brake_tripped()
    await manager.reset_brake()
    audit_action(gw, "admin.brake_reset", {"was_tripped": was})
    return json_response({"reset": True, "was_tripped": was, "brake": await brake_state(manager)})
