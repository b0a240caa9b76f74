"""Exact (tiktoken) prompt counts for budget reservations are opt-in: ~80 MB of vocabularies."""

from __future__ import annotations

from llmrelay.cost.tokens import TokenCounter
from llmrelay.relay import Relay
from llmrelay.types import ChatRequest, Message

CONFIG = {"providers": {"fake": {"kind": "fake"}}, "models": {"m": [{"provider": "fake", "model": "gpt-4o-mini"}]},
          "storage": {"url": "sqlite://:memory:"}}


def test_an_estimating_counter_never_loads_an_encoding() -> None:
    counter = TokenCounter(exact=False)
    text = "Say hello to bench client number 12, " * 10
    assert not counter.exact("gpt-4o-mini")
    assert counter.count_text(text, "gpt-4o-mini") > 0
    assert counter._encoders == {}


def test_reservations_estimate_unless_exact_counts_are_configured() -> None:
    request = ChatRequest(model="m", messages=(Message.user("hello " * 50),))
    for exact in (False, True):
        relay = Relay({**CONFIG, "pricing": {"exact_token_counts": exact}})
        counter = relay.services.state["cost.estimator"].counter
        assert counter.exact("gpt-4o-mini") is exact
        assert counter.count_request(request, "gpt-4o-mini") > 0
        assert bool(counter._encoders) == exact  # the vocabulary is loaded only when asked for
