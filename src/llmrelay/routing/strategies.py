"""Strategies: the order in which a model group's deployments are tried for one request.

A strategy is a function ``(deployments, rand) -> ordered list``. The router walks that order,
skipping deployments whose breaker is open, that are cooling down after a 429, or that have no rate
capacity left. Add one by adding a function to ``STRATEGIES``:

    def cheapest_first(deps, rand):
        return sorted(deps, key=lambda d: d.extra.get("price", 0.0))
    STRATEGIES["cheapest"] = cheapest_first   # then: routing: {strategy: cheapest}

The default is ``ordered``: the order in the config, i.e. failover.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TypeAlias

from .state import DeploymentState

Strategy: TypeAlias = Callable[[Sequence[DeploymentState], Callable[[], float]], list[DeploymentState]]


def ordered(deps: Sequence[DeploymentState], rand: Callable[[], float]) -> list[DeploymentState]:
    return list(deps)


def weighted(deps: Sequence[DeploymentState], rand: Callable[[], float]) -> list[DeploymentState]:
    """A random order where each deployment comes first with probability proportional to its
    weight (Efraimidis-Spirakis keys), so failover after the first pick still follows weights."""
    if len(deps) == 1:
        return list(deps)

    def key(d: DeploymentState) -> float:
        u = max(rand(), 1e-12)
        return math.log(u) / d.weight

    return sorted(deps, key=key, reverse=True)


def lowest_latency(deps: Sequence[DeploymentState], rand: Callable[[], float]) -> list[DeploymentState]:
    """Fastest first by the moving average of observed latency; a deployment never measured goes
    first so it gets measured (ties keep the configured order)."""
    return sorted(deps, key=lambda d: -1.0 if d.latency_s is None else d.latency_s)


def least_busy(deps: Sequence[DeploymentState], rand: Callable[[], float]) -> list[DeploymentState]:
    """Fewest requests in flight first (ties keep the configured order)."""
    return sorted(deps, key=lambda d: d.in_flight)


STRATEGIES: dict[str, Strategy] = {
    "ordered": ordered,
    "failover": ordered,
    "weighted": weighted,
    "latency": lowest_latency,
    "lowest_latency": lowest_latency,
    "least_busy": least_busy,
}
