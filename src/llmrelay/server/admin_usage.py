"""``/admin/usage``: spend and usage from the ledger, over the cost engineer's analytics
(:func:`llmrelay.cost.analytics.usage_report`, the function ``llmrelay usage report`` calls).

- ``GET /admin/usage?since=7d&by=model,day&format=json|csv`` (filters: ``user``, ``key``, ``team``,
  ``group``, ``provider``, ``model``; paging: ``limit`` (default 1,000) and ``offset`` over the
  groups, costliest first): grouped rows, the total, the trend, month-to-date, forecast and
  recommendations (JSON, with ``groups`` and ``truncated``), or the page's rows as CSV.
- ``GET /admin/usage/forecast``: month to date, the month-end forecast and the daily trend.
- ``GET /admin/usage/recommendations?since=30d``: money-saving recommendations, largest first.

Rows still queued in the ledger writer are written first, so the figures include every request
answered before the call.
"""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING, Any

from ..errors import InvalidRequestError
from ._asgi import Request, Response, json_response
from .admin import LedgerUnavailableError, flush_ledger, query
from .auth import require_admin

if TYPE_CHECKING:
    from ..cost.analytics import Report
    from ..cost.ledger import LedgerStore
    from .app import Gateway

_FILTERS = ("user", "key", "team", "group", "provider", "model")
_MEASURES = ("requests", "input_tokens", "output_tokens", "cache_read_tokens", "reasoning_tokens", "cost_usd",
             "cost_saved_usd", "errors", "cache_hits", "avg_latency_ms")


def register(gw: Gateway) -> None:
    from .openai_api import WIRE

    gw.route("GET", "/admin/usage", WIRE, lambda req: usage(gw, req))
    gw.route("GET", "/admin/usage/forecast", WIRE, lambda req: forecast(gw, req))
    gw.route("GET", "/admin/usage/recommendations", WIRE, lambda req: recommendations(gw, req))


async def _store(gw: Gateway) -> LedgerStore:
    writer = gw.relay.services.ledger
    if writer is None:
        raise InvalidRequestError("no usage ledger is configured (storage.url)")
    pending = await flush_ledger(gw)
    if pending:
        raise LedgerUnavailableError(
            f"the usage ledger cannot be written right now ({pending} rows queued), so figures would be "
            "incomplete; check the database at storage.url (the gateway log says why) and retry")
    store: LedgerStore = writer.store
    return store


def _dims(text: str) -> tuple[str, ...]:
    from ..cost.analytics import DIMENSIONS

    dims = tuple(d.strip() for d in text.split(",") if d.strip())
    unknown = [d for d in dims if d not in DIMENSIONS]
    if unknown:
        raise InvalidRequestError(f"by={','.join(unknown)}: unknown dimension; use {', '.join(DIMENSIONS)}",
                                  param="by")
    return dims


async def _report(gw: Gateway, params: dict[str, str], *, by: tuple[str, ...], recommend: bool) -> Report:
    from ..cost.analytics import usage_report

    services = gw.relay.services
    store = await _store(gw)
    filters = {k: params[k] for k in _FILTERS if params.get(k)}
    page = {k: _whole(params, k) for k in ("limit", "offset") if params.get(k)}
    try:
        return await usage_report(store, services.settings, services.pricing, since=params.get("since", "7d"),
                                  by=by, filters=filters, now=services.clock.time(), recommend=recommend, **page)
    except ValueError as exc:  # a bad since=, limit= or offset= (the message says what works)
        raise InvalidRequestError(str(exc)) from None


def _whole(params: dict[str, str], name: str) -> int:
    raw = params[name]
    if not raw.isdigit():
        raise InvalidRequestError(f"{name}={raw!r}: use a whole number", param=name)
    return int(raw)


async def usage(gw: Gateway, req: Request) -> Response:
    await require_admin(gw.auth, req.headers)
    params = query(req)
    fmt = params.get("format", "json")
    if fmt not in ("json", "csv"):
        raise InvalidRequestError(f"format={fmt!r}: use json or csv", param="format")
    rep = await _report(gw, params, by=_dims(params.get("by", "model")), recommend=fmt == "json")
    if fmt == "json":
        return json_response(rep.to_dict())
    return Response(200, to_csv(rep).encode(), [(b"content-type", b"text/csv; charset=utf-8"),
                                                 (b"content-disposition", b'attachment; filename="usage.csv"')])


def to_csv(rep: Report) -> str:
    """The report's rows as CSV: one column per dimension (ledger column names), then measures."""
    from ..cost.analytics import DIMENSIONS

    cols = [*(DIMENSIONS[d] for d in rep.by), *_MEASURES]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rep.rows)
    return buf.getvalue()


async def forecast(gw: Gateway, req: Request) -> Response:
    await require_admin(gw.auth, req.headers)
    params = query(req)
    rep = await _report(gw, {**params, "since": params.get("since", "30d")}, by=(), recommend=False)
    return json_response({"currency": rep.currency, "month_to_date_usd": rep.month_to_date_usd,
                          "forecast_month_usd": rep.forecast_month_usd, "trend": rep.trend})


async def recommendations(gw: Gateway, req: Request) -> Response:
    from ..cost.analytics import parse_since
    from ..cost.analytics import recommendations as recommend

    await require_admin(gw.auth, req.headers)
    services = gw.relay.services
    since = query(req).get("since", "30d")
    try:
        seconds = parse_since(since)[0]
    except ValueError as exc:
        raise InvalidRequestError(str(exc), param="since") from None
    recs = await recommend(await _store(gw), services.settings, services.pricing, services.clock.time() - seconds)
    data: list[dict[str, Any]] = [{"kind": r.kind, "message": r.message, "saving_usd": r.saving_usd, **r.detail}
                                  for r in recs]
    return json_response({"object": "list", "since": since, "data": data,
                          "total_saving_usd": round(sum(r.saving_usd for r in recs), 8)})
