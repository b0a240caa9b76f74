"""Per-deployment routing state: circuit breaker, latency statistics, in-flight count, cooldown
after a 429, and the deployment's own rate limit.

It lives in ``services.state`` (see :func:`deployment_states`) so breakers and latency figures
survive a config reload; a reload updates the configured parameters (weight, limits) in place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..clock import Clock
from ..config import Deployment, RoutingConfig, Settings
from ..ratelimit.bucket import Limit
from .circuit import CircuitBreaker

# Weight of the newest observation in the latency moving average.
EWMA_ALPHA = 0.3
STATE_KEY = "routing.deployments"


@dataclass(slots=True, eq=False)
class DeploymentState:
    provider: str
    model: str
    breaker: CircuitBreaker
    weight: float = 1.0
    limit: Limit | None = None
    limits_conf: tuple[int | None, int | None] = (None, None)
    in_flight: int = 0
    # Exponentially weighted moving average of latency (time to first byte for streams), seconds.
    latency_s: float | None = None
    cooldown_until: float = 0.0
    successes: int = 0
    failures: int = 0
    last_error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.provider}/{self.model}"

    def observe_latency(self, seconds: float) -> None:
        prev = self.latency_s
        self.latency_s = seconds if prev is None else prev + EWMA_ALPHA * (seconds - prev)

    def cooling(self, now: float) -> bool:
        return now < self.cooldown_until


def _limits(settings: Settings, dep: Deployment) -> tuple[int | None, int | None]:
    prov = settings.providers.get(dep.provider)
    rpm = dep.rpm or (prov.rpm if prov else None)
    tpm = dep.tpm or (prov.tpm if prov else None)
    return rpm, tpm


def deployment_states(
    state: dict[str, Any], settings: Settings, clock: Clock
) -> dict[str, DeploymentState]:
    """The states for every configured deployment, created or carried over from ``state``.

    A provider-level rpm/tpm is shared by all deployments on that provider; a deployment-level
    one applies to that deployment alone.
    """
    table: dict[str, DeploymentState] = state.setdefault(STATE_KEY, {})
    shared: dict[str, Limit | None] = {}
    for deps in settings.models.values():
        for dep in deps:
            ensure_state(table, settings, dep, clock, shared)
    return table


def ensure_state(
    table: dict[str, DeploymentState],
    settings: Settings,
    dep: Deployment,
    clock: Clock,
    shared: dict[str, Limit | None] | None = None,
) -> DeploymentState:
    key = f"{dep.provider}/{dep.model}"
    conf = _limits(settings, dep)
    st = table.get(key)
    if st is None:
        st = table[key] = DeploymentState(dep.provider, dep.model, _breaker(settings.routing, clock))
    else:
        _update_breaker(st.breaker, settings.routing)
    st.weight = dep.weight
    if st.limits_conf != conf or (conf != (None, None) and st.limit is None):
        st.limits_conf = conf
        if dep.rpm or dep.tpm or shared is None:
            st.limit = Limit.per_minute(conf[0], conf[1], clock)
        else:
            if dep.provider not in shared:
                shared[dep.provider] = Limit.per_minute(conf[0], conf[1], clock)
            st.limit = shared[dep.provider]
    return st


def _breaker(routing: RoutingConfig, clock: Clock) -> CircuitBreaker:
    c = routing.circuit
    return CircuitBreaker(c.failures, c.window_s, c.cooldown_s, clock)


def _update_breaker(breaker: CircuitBreaker, routing: RoutingConfig) -> None:
    c = routing.circuit
    breaker.failures, breaker.window_s, breaker.cooldown_s = c.failures, c.window_s, c.cooldown_s
