"""Budget alerts: to the log, metrics, the audit log and a webhook, off the request path.

    alerter = Alerter(settings.alerts, metrics=services.metrics, audit=services.audit)
    alerter.fire(BudgetAlert("team", "research", "month", "2025-01", 0.8, 812.0, 1000.0))
    await alerter.aclose()   # waits (bounded) for webhook posts still in flight

The webhook receives the alert as JSON (``BudgetAlert.to_dict()``), POSTed with a timeout; a
failed post is logged, never retried in a loop and never felt by the request that crossed the line.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from dataclasses import asdict, dataclass
from typing import Any

from ..config import AlertsConfig

log = logging.getLogger("llmrelay.cost.alerts")


@dataclass(frozen=True, slots=True)
class BudgetAlert:
    scope: str
    subject: str
    period: str
    period_label: str
    fraction: float
    spent_usd: float
    limit_usd: float
    kind: str = "budget_threshold"

    def to_dict(self) -> dict[str, Any]:
        return {"event": self.kind, **asdict(self)}

    def message(self) -> str:
        if self.kind == "emergency_brake":
            return f"emergency brake tripped: ${self.spent_usd:.2f} spent within the window (max ${self.limit_usd:.2f})"
        return (
            f"budget {self.scope}:{self.subject} ({self.period} {self.period_label}) passed "
            f"{self.fraction:.0%}: ${self.spent_usd:.2f} of ${self.limit_usd:.2f}"
        )


class Alerter:
    def __init__(self, config: AlertsConfig | None = None, *, metrics: Any = None, audit: Any = None,
                 post: Any = None) -> None:
        self.config = config or AlertsConfig()
        self.metrics = metrics
        self.audit = audit
        # Injectable for tests: async (url, payload, timeout_s) -> None.
        self._post = post or _aiohttp_post
        self._tasks: set[asyncio.Task[None]] = set()
        self.sent: list[BudgetAlert] = []

    def fire(self, alert: BudgetAlert) -> None:
        self.sent.append(alert)
        del self.sent[:-100]
        log.warning("%s", alert.message())
        if self.audit is not None:
            try:
                result = self.audit.record("budget.alert", alert.to_dict())
                if inspect.isawaitable(result):
                    self._track(asyncio.ensure_future(result))
            except Exception:
                log.exception("could not write the budget alert to the audit log")
        if self.config.webhook_url:
            self._track(asyncio.get_running_loop().create_task(self._send(alert)))

    def _track(self, task: asyncio.Future[Any]) -> None:
        self._tasks.add(task)  # type: ignore[arg-type]
        task.add_done_callback(self._tasks.discard)  # type: ignore[arg-type]

    async def _send(self, alert: BudgetAlert) -> None:
        assert self.config.webhook_url
        try:
            await self._post(self.config.webhook_url, alert.to_dict(), self.config.timeout_s)
        except Exception as exc:
            log.error("budget alert webhook %s failed: %s", self.config.webhook_url, exc)

    async def aclose(self) -> None:
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=self.config.timeout_s)


async def _aiohttp_post(url: str, payload: dict[str, Any], timeout_s: float) -> None:
    import aiohttp

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as session, \
            session.post(url, json=payload) as resp:
        if resp.status >= 400:
            raise RuntimeError(f"HTTP {resp.status}")
