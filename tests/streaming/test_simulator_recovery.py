"""Streams cut at random points by the simulator are recovered with exactly the uncut text."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator

import pytest

from llmrelay import Relay
from llmrelay.context import RequestContext
from llmrelay.simulator import serve_in_thread
from llmrelay.simulator._app import Simulator
from llmrelay.streaming import Assembler
from llmrelay.types import ChatRequest, Message

STREAMS = 150


@pytest.fixture(scope="module")
def sim_url() -> Iterator[str]:
    with serve_in_thread(app=Simulator(seed=7)) as url:
        yield url


async def _text(relay: Relay, model: str, prompt: str) -> tuple[str, RequestContext, float]:
    ctx = RequestContext()
    req = ChatRequest(model=model, messages=(Message.user(prompt),), stream=True, max_tokens=400)
    asm = Assembler()
    t0 = time.perf_counter()
    async for chunk in relay.handle(req, ctx):
        asm.add(chunk)
    return asm.text, ctx, time.perf_counter() - t0


@pytest.mark.parametrize("provider,model", [("oai", "sim-model"), ("ant", "claude-sonnet-4-5")])
async def test_cut_streams_complete_with_the_expected_text(sim_url: str, provider: str, model: str) -> None:
    relay = Relay({
        "providers": {
            "oai": {"kind": "openai", "base_url": f"{sim_url}/openai/v1", "api_key": "x", "options": {"prefill": True}},
            "ant": {"kind": "anthropic", "base_url": f"{sim_url}/anthropic", "api_key": "x"},
        },
        "models": {}, "routing": {"backoff": {"base_s": 0.01, "max_s": 0.05}},
        "storage": {"url": "sqlite:///:memory:"},
    })
    rng = random.Random(3)
    exact = recovered = 0
    clean_s: list[float] = []
    cut_s: list[float] = []
    async with relay:
        for i in range(STREAMS):
            prompt = f"question {i} about rivers and {rng.choice(['salt', 'stone', 'light'])}"
            words = rng.randint(20, 60)
            expected, _, t_clean = await _text(relay, f"{provider}/{model}+words={words}", prompt)
            after = rng.randint(1, 12)  # the simulator cuts after this many chunks, on 20% of calls
            got, ctx, t_cut = await _text(relay, f"{provider}/{model}+words={words},fault=drop,after={after},rate=0.2", prompt)
            exact += got == expected
            if ctx.recovered:
                recovered += 1
                clean_s.append(t_clean)
                cut_s.append(t_cut)
    added = sorted(c - k for c, k in zip(cut_s, clean_s, strict=True))
    print(f"\n{provider}: {exact}/{STREAMS} exact, {recovered} recovered; recovery adds median "
          f"{added[len(added) // 2] * 1000:.1f} ms, max {added[-1] * 1000:.1f} ms")
    assert recovered >= STREAMS * 0.1  # the faults did fire
    assert exact >= STREAMS * 0.99
