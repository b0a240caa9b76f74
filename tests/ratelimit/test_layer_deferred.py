"""The ratelimit layer behind an HTTP edge (``ctx.after_response`` set): admission as for a
library call, the token correction and the wait metric queued on the context and run once the
response is out (the correction matters: without it far fewer requests fit a TPM limit)."""

from __future__ import annotations

from typing import Any

import pytest

from llmrelay.clock import ManualClock
from llmrelay.context import RequestContext
from llmrelay.errors import RateLimitError
from llmrelay.types import ChatRequest, Message

from .test_layer import Key, _layer


async def _edge_call(layer: Any, key: Key, run_after: bool = True) -> RequestContext:
    ctx = RequestContext(key=key, key_id=key.id, after_response=[])
    try:
        async for _ in layer(ChatRequest(model="m", messages=(Message.user("hello"),)), ctx):
            pass
    finally:
        if run_after:
            await ctx.run_after_response()
    return ctx


async def test_exactly_n_per_window_behind_an_edge() -> None:
    layer, services = _layer(ManualClock())
    key = Key("e", rpm=4)
    ok = 0
    for _ in range(10):
        try:
            await _edge_call(layer, key)
            ok += 1
        except RateLimitError:
            pass
    assert ok == 4
    refused = services.metrics.registry.get_sample_value("llmrelay_ratelimited_total", {"scope": "key"})
    assert refused == 6


async def test_the_correction_waits_for_the_response_then_gives_tokens_back() -> None:
    layer, services = _layer(ManualClock())
    key = Key("t", tpm=600)  # each estimate ~257 tokens, each real use 10
    ctx = await _edge_call(layer, key, run_after=False)
    # Not corrected yet: the work is queued on the request (the correction and the wait metric).
    assert ctx.after_response is not None and len(ctx.after_response) == 2
    count = services.metrics.registry.get_sample_value("llmrelay_ratelimit_wait_seconds_count", {"priority": "normal"})
    assert not count  # the child exists (looked up), nothing observed yet
    await ctx.run_after_response()
    count = services.metrics.registry.get_sample_value("llmrelay_ratelimit_wait_seconds_count", {"priority": "normal"})
    assert count == 1
    # With the correction, far more than two fit in the 600 tokens a minute.
    passed = 0
    for _ in range(10):
        try:
            await _edge_call(layer, key)
            passed += 1
        except RateLimitError:
            pass
    assert passed >= 5


@pytest.mark.parametrize("run_after", [False, True])
async def test_without_the_correction_the_estimate_stays_taken(run_after: bool) -> None:
    """The same calls with the deferred work dropped: only two fit (the correction matters)."""
    layer, _ = _layer(ManualClock())
    key = Key(f"d{run_after}", tpm=600)
    passed = 0
    for _ in range(10):
        try:
            await _edge_call(layer, key, run_after=run_after)
            passed += 1
        except RateLimitError:
            pass
    assert (passed >= 5) if run_after else (passed == 2)
