"""Fixtures for the routing tests: a Router over scripted fake deployments on a manual clock,
so backoff and cooldowns never wait, and a seeded random source so jitter is reproducible."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest

from llmrelay.clock import ManualClock
from llmrelay.config import Settings
from llmrelay.context import RequestContext
from llmrelay.layers.router import RANDOM_KEY, Router
from llmrelay.metrics import Metrics
from llmrelay.services import Services
from llmrelay.streaming import Assembler
from llmrelay.testing import FakeProvider
from llmrelay.types import ChatRequest, ChatResult, Message


def make_settings(n: int = 2, routing: dict[str, Any] | None = None, **extra: Any) -> Settings:
    names = [chr(ord("a") + i) for i in range(n)]
    return Settings.from_dict(
        {
            "providers": {p: {"kind": "fake"} for p in names},
            "models": {"m": [{"provider": p, "model": f"model-{p}"} for p in names]},
            "routing": {"retries": 2, "backoff": {"base_s": 0.1, "max_s": 1.0}, **(routing or {})},
            **extra,
        }
    )


class Harness:
    def __init__(self, settings: Settings, clock: ManualClock, seed: int = 1) -> None:
        self.clock = clock
        self.services = Services.build(settings, clock=clock)
        self.services.metrics = Metrics()
        self.services.state[RANDOM_KEY] = random.Random(seed)
        self.router = Router(self.services)

    def fake(self, name: str) -> FakeProvider:
        p = self.services.providers[name]
        assert isinstance(p, FakeProvider)
        return p

    async def call(self, text: str = "hi", *, stream: bool = False, model: str = "m", ctx: RequestContext | None = None) -> tuple[ChatResult, RequestContext]:
        ctx = ctx or RequestContext()
        req = ChatRequest(model=model, messages=(Message.user(text),), stream=stream)
        asm = Assembler()
        async for chunk in self.router.handle(req, ctx):
            asm.add(chunk)
        return asm.result(provider=ctx.provider), ctx

    def metric(self, name: str, **labels: str) -> float:
        value = self.services.metrics.registry.get_sample_value(name, labels)
        return value or 0.0


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def harness(clock: ManualClock) -> Callable[..., Harness]:
    def make(n: int = 2, routing: dict[str, Any] | None = None, seed: int = 1, **extra: Any) -> Harness:
        return Harness(make_settings(n, routing, **extra), clock, seed)

    return make
