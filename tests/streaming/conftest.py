"""Fixtures for the streaming tests: a router over scripted deployments whose streams can break
mid-answer, on a manual clock so backoff never waits; and a real gateway on 127.0.0.1 (``serve``)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pytest
from tests.conftest import serve_asgi

from llmrelay import Relay
from llmrelay.clock import ManualClock
from llmrelay.config import Settings
from llmrelay.context import RequestContext
from llmrelay.errors import LLMRelayError
from llmrelay.layers.router import RANDOM_KEY, Router
from llmrelay.metrics import Metrics
from llmrelay.services import Services
from llmrelay.streaming import Assembler
from llmrelay.testing import FakeProvider
from llmrelay.types import ChatRequest, ChatResult, Chunk, Message

# One scripted stream: chunks (or plain text pieces), then optionally an error that cuts it.
Script = tuple[Sequence[str | Chunk], LLMRelayError | None]


class BreakingProvider(FakeProvider):
    """A fake provider whose streams follow ``scripts`` in turn: pieces, then a cut (or the end)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.scripts: list[Script] = []
        self.closed = 0

    async def stream(self, request: ChatRequest) -> AsyncIterator[Chunk]:
        self.calls.append(request)
        pieces, error = self.scripts.pop(0)
        try:
            for i, p in enumerate(pieces):
                c = p if isinstance(p, Chunk) else Chunk(text=p)
                yield Chunk(text=c.text, tool_calls=c.tool_calls, reasoning=c.reasoning, usage=c.usage,
                            finish_reason=c.finish_reason, id=c.id or ("up-1" if i == 0 else None))
            if error is not None:
                raise error
        finally:
            self.closed += 1


class Harness:
    def __init__(self, n: int = 2, prefill: Sequence[bool] = (True, True), routing: dict[str, Any] | None = None) -> None:
        names = [chr(ord("a") + i) for i in range(n)]
        settings = Settings.from_dict({
            "providers": {p: {"kind": "fake"} for p in names},
            "models": {"m": [{"provider": p, "model": f"model-{p}"} for p in names]},
            "routing": {"retries": 1, "backoff": {"base_s": 0.01, "max_s": 0.01}, **(routing or {})},
        })
        self.clock = ManualClock()
        self.services = Services.build(settings, clock=self.clock)
        self.services.metrics = Metrics()
        self.services.state[RANDOM_KEY] = random.Random(1)
        self.fakes: dict[str, BreakingProvider] = {}
        for name, can in zip(names, prefill, strict=False):
            p = BreakingProvider()
            p.name = name
            if not can:
                p.capabilities = type(p.capabilities)(prefill=False)  # type: ignore[misc]
            self.services.providers[name] = self.fakes[name] = p
        self.router = Router(self.services)

    async def stream(self, text: str = "hi", ctx: RequestContext | None = None) -> tuple[ChatResult, RequestContext, list[Chunk]]:
        ctx = ctx or RequestContext()
        req = ChatRequest(model="m", messages=(Message.user(text),), stream=True)
        asm, seen = Assembler(), []
        async for chunk in self.router.handle(req, ctx):
            asm.add(chunk)
            seen.append(chunk)
        return asm.result(provider=ctx.provider), ctx, seen

    def metric(self, name: str, **labels: str) -> float:
        return self.services.metrics.registry.get_sample_value(name, labels) or 0.0


@pytest.fixture
def harness() -> type[Harness]:
    return Harness


@contextmanager
def serve(relay: Relay) -> Iterator[str]:
    """Run the gateway for ``relay`` with uvicorn on 127.0.0.1 (a free port, in a thread); yield its URL."""
    from llmrelay.server.app import create_app

    with serve_asgi(create_app(relay), start_timeout_s=10) as url:
        yield url
