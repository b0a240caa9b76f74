"""Pricing engine behaviour: overrides, unpriced flagging, tiers, currency, volume discounts, and
offline token counting."""

from __future__ import annotations

import logging

import pytest

from llmrelay.clock import ManualClock
from llmrelay.config import PricingConfig
from llmrelay.context import RequestContext
from llmrelay.cost.pricing import PricingEngine
from llmrelay.cost.tokens import TokenCounter
from llmrelay.metrics import Metrics
from llmrelay.types import ChatRequest, Message, Usage


def _ctx(provider: str, kind: str, model: str, usage: Usage) -> RequestContext:
    ctx = RequestContext(provider=provider, provider_kind=kind, upstream_model=model)
    ctx.usage = usage
    return ctx


def test_overrides_win_provider_then_bare_model() -> None:
    cfg = PricingConfig.model_validate({"overrides": {
        "sim/gpt-4o-mini": {"input_per_mtok": 1, "output_per_mtok": 2},
        "gpt-4o-mini": {"input_per_mtok": 10, "output_per_mtok": 20}}})
    engine = PricingEngine(cfg)
    u = Usage(input_tokens=1_000_000, output_tokens=1_000_000)
    a, b = _ctx("sim", "openai", "gpt-4o-mini", u), _ctx("other", "openai", "gpt-4o-mini", u)
    engine.apply(a)
    engine.apply(b)
    assert (a.cost_usd, b.cost_usd) == (3.0, 30.0)


def test_unknown_model_is_flagged_warned_once_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    metrics = Metrics()
    engine = PricingEngine(metrics=metrics)
    with caplog.at_level(logging.WARNING, "llmrelay.cost"):
        for _ in range(3):
            ctx = _ctx("x", "openai", "my-finetune-zzz", Usage(input_tokens=5, output_tokens=5))
            engine.apply(ctx)
            assert ctx.unpriced and ctx.cost_usd == 0.0
    assert sum("my-finetune-zzz" in r.message for r in caplog.records) == 1
    assert metrics.unpriced.labels(provider="x", model="my-finetune-zzz")._value.get() == 3
    local = _ctx("l", "ollama", "llama3.2", Usage(input_tokens=5, output_tokens=5))
    engine.apply(local)
    assert not local.unpriced and local.cost_usd == 0.0  # self-hosted: a known price of zero


def test_service_tier_batch_and_currency() -> None:
    engine = PricingEngine(PricingConfig(currency="EUR", exchange_rates={"EUR": 0.9}))
    u = Usage(input_tokens=1_000_000, output_tokens=0)
    std = engine.quote("o", "openai", "gpt-4o-mini", u).cost_usd
    batch = engine.quote("o", "openai", "gpt-4o-mini", u, {"processing": "batch"}).cost_usd
    assert batch == pytest.approx(std / 2)
    assert engine.convert(std) == pytest.approx(std * 0.9)
    with pytest.raises(ValueError, match="exchange_rates"):
        PricingEngine(PricingConfig(currency="JPY"))


def test_volume_discount_applies_above_period_spend() -> None:
    cfg = PricingConfig.model_validate({
        "overrides": {"m": {"input_per_mtok": 1_000_000, "output_per_mtok": 0}},
        "volume_discounts": [{"above_usd": 2.0, "discount": 0.25}]})
    engine = PricingEngine(cfg, clock=ManualClock())
    costs = []
    for _ in range(4):
        ctx = _ctx("p", "openai", "m", Usage(input_tokens=1))
        engine.apply(ctx)
        costs.append(ctx.cost_usd)
    assert costs == [1.0, 1.0, 0.75, 0.75]


def test_tokens_counted_exactly_offline(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    import tiktoken.load

    def no_network(*a: object, **k: object) -> bytes:
        raise AssertionError("tiktoken tried to download")

    monkeypatch.setattr(tiktoken.load, "read_file", no_network)
    counter = TokenCounter()
    assert counter.count_text("hello world", "gpt-4o") == 2
    assert counter.count_text("hello world", "gpt-4") == 2
    text = "The quick brown fox jumps over the lazy dog. " * 20
    exact = counter.count_text(text, "gpt-4o-mini")
    estimate = counter.count_text(text, "claude-sonnet-4-5")
    # The estimate errs towards more tokens, but stays in the same range.
    assert exact <= estimate <= exact * 2
    req = ChatRequest(model="m", messages=(Message.system("be brief"), Message.user("hello world")))
    assert counter.count_request(req, "gpt-4o") == counter.count_text("be brief\nhello world", "gpt-4o") + 11
