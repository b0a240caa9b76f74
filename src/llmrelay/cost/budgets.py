"""Budgets: reserve the worst-case cost before a call, settle the real cost after.

A request falls under every budget whose scope matches it: global, its team, key, user, session or
model group, from the config's ``budgets:`` list and from its virtual key's ``budget_usd``. Periods
are calendar days, ISO weeks, months (in ``pricing.timezone``) or the total. All of them are
reserved in one atomic step (:mod:`.counters`), so concurrent requests cannot together overrun a
budget; after the call the reservation is replaced by what was really spent (also on failure or
cancel, where that is usually less).

    manager = BudgetManager(settings, MemoryCounters(clock), clock=clock)
    res = await manager.reserve(ctx, worst_case_usd=0.02)    # raises BudgetExceededError
    ...                                                        # the call
    await manager.settle(res, ctx.cost_usd)

The emergency brake (``emergency_brake: {max_usd, window_s}``) trips when spend inside a short
window passes ``max_usd`` and then refuses every request until :meth:`BudgetManager.reset_brake`.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..config import BudgetConfig, Settings
from ..context import RequestContext
from ..errors import BudgetExceededError
from .alerts import Alerter, BudgetAlert
from .counters import BRAKE, OK, CounterStore
from .periods import Period, period_of

log = logging.getLogger("llmrelay.cost.budgets")

MICRO = 1_000_000
PREFIX = "llmrelay:budget:"
BRAKE_KEY = PREFIX + "brake:tripped"
# Keep a counter a day past its period, so a late settle still finds it.
_GRACE_S = 86400
# How long a shared counter's value, as last seen, may answer the entry check (see _recent).
_SEEN_S = 1.0


@dataclass(frozen=True, slots=True)
class Applied:
    """One budget as it applies to one request: which counter, its limit and its period."""

    rule: BudgetConfig
    subject: str
    period: Period
    key: str
    limit: int

    def ttl(self, now: float) -> int:
        return int(self.period.end - now) + _GRACE_S


@dataclass(slots=True)
class Reservation:
    applied: tuple[Applied, ...]
    amount: int
    settled: bool = False


def subject_of(scope: str, ctx: RequestContext, model: str | None) -> str | None:
    if scope == "global":
        return "*"
    return {
        "team": ctx.team,
        "key": ctx.key_id or getattr(ctx.key, "id", None),
        "user": ctx.user,
        "session": ctx.session,
        "model": ctx.model_group or model,
    }.get(scope)


class BudgetManager:
    def __init__(
        self,
        settings: Settings,
        counters: CounterStore,
        *,
        clock: Any = None,
        alerter: Alerter | None = None,
        metrics: Any = None,
    ) -> None:
        self.rules = tuple(settings.budgets)
        self.brake = settings.emergency_brake
        self.tz = settings.pricing.timezone
        self.counters = counters
        # The current period of each name, and each key's own rule: both asked for on every
        # request, both the same until midnight (or the key changes). Bounded below.
        self._periods: dict[str, Period] = {}
        self._key_rules: dict[tuple[str, str, float], BudgetConfig] = {}
        # Shared counter -> (value, when seen): see _recent().
        self._seen: dict[str, tuple[int, float]] = {}
        # caller -> (its budgets, valid from, valid until): see applicable().
        self._applied: dict[tuple[Any, ...], tuple[tuple[Applied, ...], float, float]] = {}
        self.clock = clock
        self.alerter = alerter
        self.metrics = metrics

    @property
    def active(self) -> bool:
        """Whether any budget can apply (config rules, a brake; keys may carry their own)."""
        return bool(self.rules) or self.brake is not None

    def _now(self) -> float:
        return self.clock.time() if self.clock is not None else time.time()

    def applicable(self, ctx: RequestContext, model: str | None = None) -> tuple[Applied, ...]:
        """The budgets this request falls under, with their counters for the current period.

        Every request asks (the budget layer, on entry); the answer depends only on who is calling
        and the period, so it is kept per caller until the earliest of its periods ends (bounded).
        """
        now = self._now()
        key = ctx.key
        ident = None
        if key is not None:
            budget = getattr(key, "budget_usd", None)
            if budget:
                ident = (str(key.id), getattr(key, "budget_period", None) or "month", float(budget))
            key = getattr(key, "id", None)
        caller = (ctx.key_id, key, ident, ctx.team, ctx.user, ctx.session, ctx.model_group or model)
        held = self._applied.get(caller)
        if held is not None and held[1] <= now < held[2]:
            return held[0]
        out = self._lookup(ctx, model, now, ident)
        if len(self._applied) >= 4096:
            self._applied.clear()
        since = max((a.period.start for a in out), default=now)
        until = min((a.period.end for a in out if a.period.name != "total"), default=now + 3600.0)
        self._applied[caller] = (out, since, until)
        return out

    def _lookup(self, ctx: RequestContext, model: str | None, now: float,
                ident: tuple[str, str, float] | None) -> tuple[Applied, ...]:
        out: list[Applied] = []
        rules = list(self.rules)
        if ident is not None:
            rules.append(self._key_rule(ident))
        for rule in rules:
            subject = subject_of(rule.scope, ctx, model)
            if subject is None or (rule.id != "*" and rule.id != subject):
                continue
            period = self._period(rule.period, now)
            counter = f"{PREFIX}{rule.scope}:{subject}:{rule.period}:{period.label}"
            out.append(Applied(rule, subject, period, counter, round(rule.limit_usd * MICRO)))
        return tuple(out)

    def _period(self, name: str, now: float) -> Period:
        """``period_of`` (a time-zone conversion and two datetimes, ~5 us) once per period, not per request."""
        p = self._periods.get(name)
        if p is None or not p.start <= now < p.end or name == "total":
            p = self._periods[name] = period_of(name, now, self.tz)
        return p

    def _key_rule(self, ident: tuple[str, str, float]) -> BudgetConfig:
        rule = self._key_rules.get(ident)
        if rule is None:
            if len(self._key_rules) >= 4096:
                self._key_rules.clear()
            rule = self._key_rules[ident] = BudgetConfig(scope="key", id=ident[0], period=ident[1],
                                                         limit_usd=ident[2])
        return rule

    async def reserve(self, ctx: RequestContext, worst_case_usd: float, model: str | None = None) -> Reservation:
        return await self.reserve_applied(self.applicable(ctx, model), worst_case_usd)

    async def reserve_applied(self, applied: tuple[Applied, ...], worst_case_usd: float) -> Reservation:
        """:meth:`reserve` for budgets already looked up with :meth:`applicable`."""
        amount = math.ceil(max(0.0, worst_case_usd) * MICRO)
        if not applied and self.brake is None:
            return Reservation((), 0, settled=True)
        now = self._now()
        refused = await self.counters.reserve(
            [a.key for a in applied], [a.limit for a in applied], amount, [a.ttl(now) for a in applied], BRAKE_KEY
        )
        if refused == OK:
            return Reservation(applied, amount)
        raise self._refusal(applied, refused, f"would be exceeded by this request (worst case ${worst_case_usd:.4f}); "
                            "lower max_tokens, use a cheaper model, or ask for a higher budget")

    async def check(self, applied: tuple[Applied, ...]) -> None:
        """Refuse (429 ``budget_exceeded``) if a budget in ``applied`` is used up or the brake is on.

        Read-only and reserves nothing: the cheap test a request passes on entry, before it is
        known whether it will cost anything (a cache hit does not). A request that goes upstream
        still reserves its worst case atomically (:meth:`reserve_applied`) before the call.
        """
        keys = [BRAKE_KEY, *(a.key for a in applied)]
        # In-process counters answer without suspending: read them without a coroutine.
        peek = getattr(self.counters, "peek", None)
        values = peek(keys) if peek is not None else await self._recent(keys)
        if values[0]:
            raise self._refusal(applied, BRAKE, "")
        for i, a in enumerate(applied):
            if values[i + 1] >= a.limit:
                advice = "ask for a higher budget" if a.rule.period == "total" else \
                    "wait for the next period or ask for a higher budget"
                raise self._refusal(applied, i, f"is used up; {advice}")

    async def _recent(self, keys: list[str]) -> list[int]:
        """Shared (Redis) counters as seen within the last ``_SEEN_S``: every settle returns the
        counters' new values, so under traffic the entry check costs no round trip; idle, it
        reads them once per ``_SEEN_S``. A request that goes upstream is still checked atomically
        by its reservation; only a would-be cache hit may be served up to ``_SEEN_S`` after
        another instance used the budget up (a hit costs nothing)."""
        now = self._now()
        seen = self._seen
        stale = [k for k in keys if (v := seen.get(k)) is None or now - v[1] >= _SEEN_S]
        if stale:
            self._saw(stale, await self.counters.get(stale), now)
        return [seen[k][0] if k in seen else 0 for k in keys]

    def _saw(self, keys: Sequence[str], values: Sequence[int], now: float) -> None:
        if len(self._seen) >= 4096:
            self._seen.clear()
        for k, v in zip(keys, values, strict=True):
            self._seen[k] = (v, now)

    def _refusal(self, applied: tuple[Applied, ...], refused: int, why: str) -> BudgetExceededError:
        if self.metrics is not None:
            self.metrics.budget_refused.labels(scope="brake" if refused == BRAKE else applied[refused].rule.scope).inc()
        if refused == BRAKE:
            return BudgetExceededError(
                "the emergency spending brake is on: spend rose faster than the configured limit; "
                "an administrator must reset it (llmrelay budgets reset-brake)"
            )
        a = applied[refused]
        return BudgetExceededError(
            f"the {a.rule.period} budget for {a.rule.scope} {a.subject!r} (${a.rule.limit_usd:.2f}, "
            f"{a.period.label}) {why}"
        )

    async def charge(self, applied: tuple[Applied, ...], actual_usd: float) -> None:
        """Add spend that had no reservation (e.g. a request that reached an upstream by a path
        that took none): the counters and the brake still see it."""
        await self.settle(Reservation(applied, 0), actual_usd)

    async def settle(self, res: Reservation, actual_usd: float) -> None:
        """Replace the reservation by the actual cost (idempotent)."""
        if res.settled:
            return
        res.settled = True
        actual = math.ceil(max(0.0, actual_usd) * MICRO)
        now = self._now()
        if res.applied:
            keys = [a.key for a in res.applied]
            values = await self.counters.adjust(keys, actual - res.amount, [a.ttl(now) for a in res.applied])
            self._saw(keys, values, now)
            await self._after(res.applied, values, actual)
        if self.brake is not None and actual:
            await self._brake_add(actual, now)

    async def _after(self, applied: tuple[Applied, ...], values: list[int], actual: int) -> None:
        for a, used in zip(applied, values, strict=True):
            fraction = used / a.limit if a.limit else 1.0
            if self.metrics is not None:
                label = a.subject if a.rule.scope in ("global", "team", "key", "model") else a.rule.id
                self.metrics.budget_used.labels(scope=a.rule.scope, id=label, period=a.rule.period).set(fraction)
            if not actual or self.alerter is None:
                continue
            for threshold in a.rule.alert_at:
                # Once per period, across processes: the latch lives in the counter store.
                if fraction >= threshold and await self.counters.flag(f"{a.key}:alert:{threshold}", a.ttl(self._now())):
                    self.alerter.fire(BudgetAlert(a.rule.scope, a.subject, a.rule.period, a.period.label,
                                                  threshold, used / MICRO, a.limit / MICRO))

    async def _brake_add(self, amount: int, now: float) -> None:
        assert self.brake is not None
        window = self.brake.window_s
        bucket = int(now // window)
        ttl = int(window * 3) + 1
        cur, = await self.counters.adjust([f"{PREFIX}brake:w:{bucket}"], amount, [ttl])
        prev, = await self.counters.get([f"{PREFIX}brake:w:{bucket - 1}"])
        # Sliding-window estimate: the part of the previous bucket still inside the window.
        spent = cur + prev * (1.0 - (now % window) / window)
        if spent > self.brake.max_usd * MICRO and await self.counters.flag(BRAKE_KEY, 10 * 365 * 86400):
            log.critical("emergency brake tripped: $%.2f within %.0fs", spent / MICRO, window)
            if self.alerter is not None:
                self.alerter.fire(BudgetAlert("global", "*", "window", f"{window:.0f}s", 1.0, spent / MICRO,
                                              self.brake.max_usd, kind="emergency_brake"))

    async def brake_tripped(self) -> bool:
        return bool((await self.counters.get([BRAKE_KEY]))[0])

    async def reset_brake(self) -> None:
        """Lift the emergency brake (admin API, ``llmrelay budgets reset-brake``)."""
        await self.counters.clear(BRAKE_KEY)
        self._seen.clear()
        now = self._now()
        if self.brake is not None:
            bucket = int(now // self.brake.window_s)
            for b in (bucket, bucket - 1):
                await self.counters.clear(f"{PREFIX}brake:w:{b}")
        log.warning("emergency brake reset")

    async def status(self) -> list[dict[str, Any]]:
        """The configured budgets with their spend this period (``GET /admin/budgets``)."""
        now = self._now()
        out = []
        for rule in self.rules:
            period = period_of(rule.period, now, self.tz)
            key = f"{PREFIX}{rule.scope}:{rule.id if rule.scope != 'global' else '*'}:{rule.period}:{period.label}"
            used, = await self.counters.get([key])
            out.append({"scope": rule.scope, "id": rule.id, "period": rule.period, "period_label": period.label,
                        "limit_usd": rule.limit_usd, "spent_usd": used / MICRO,
                        "fraction": used / MICRO / rule.limit_usd})
        return out
