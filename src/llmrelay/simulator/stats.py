"""Call counting, so tests can check how many upstream calls a gateway really made."""

from __future__ import annotations

from typing import Any


class Stats:
    """Counts calls per route and per model, calls in flight and faults injected.

    ``GET /_sim/stats`` returns :meth:`snapshot`; ``POST /_sim/reset`` calls :meth:`reset`.
    """

    __slots__ = ("_calls", "_faults", "_in_flight", "_models")

    def __init__(self) -> None:
        self._calls: dict[str, int] = {}
        self._models: dict[str, dict[str, int]] = {}
        self._in_flight: dict[str, int] = {}
        self._faults: dict[str, int] = {}

    def begin(self, route: str, model: str | None) -> None:
        self._calls[route] = self._calls.get(route, 0) + 1
        self._in_flight[route] = self._in_flight.get(route, 0) + 1
        if model is not None:
            per = self._models.setdefault(route, {})
            per[model] = per.get(model, 0) + 1

    def end(self, route: str) -> None:
        self._in_flight[route] = max(self._in_flight.get(route, 0) - 1, 0)

    def fault(self, route: str) -> None:
        self._faults[route] = self._faults.get(route, 0) + 1

    def reset(self) -> None:
        # In-flight counts describe live requests, so they survive a reset.
        self._calls.clear()
        self._models.clear()
        self._faults.clear()

    def snapshot(self) -> dict[str, Any]:
        routes = {
            route: {
                "calls": n,
                "in_flight": self._in_flight.get(route, 0),
                "faults": self._faults.get(route, 0),
                "models": dict(self._models.get(route, {})),
            }
            for route, n in self._calls.items()
        }
        return {
            "total": sum(self._calls.values()),
            "in_flight": sum(self._in_flight.values()),
            "routes": routes,
        }
