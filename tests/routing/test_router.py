"""The router: failover order, retries with backoff, breakers, cooldowns, deadlines, fallbacks."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from llmrelay.context import RequestContext
from llmrelay.errors import (
    AuthenticationError,
    ContextWindowExceededError,
    InvalidRequestError,
    ModelNotFoundError,
    ProviderUnavailableError,
    RateLimitError,
    StreamInterruptedError,
)
from llmrelay.routing.health import router_status
from llmrelay.types import ChatRequest, Chunk, Message

from .conftest import Harness

H = Callable[..., Harness]


async def test_first_deployment_answers(harness: H) -> None:
    h = harness()
    result, ctx = await h.call("hello")
    assert result.text == "You said: hello"
    assert (ctx.provider, ctx.upstream_model, ctx.attempts) == ("a", "model-a", 1)
    assert ctx.usage is not None and ctx.usage.output_tokens == result.usage.output_tokens
    assert h.fake("b").calls == []


async def test_fails_over_to_next_deployment_without_waiting(harness: H, clock) -> None:
    h = harness()
    h.fake("a").script([ProviderUnavailableError("down")])
    before = clock.monotonic()
    result, ctx = await h.call("x")
    assert ctx.provider == "b" and ctx.attempts == 2
    assert result.text == "You said: x"
    # Failing over to an untried deployment needs no backoff.
    assert clock.monotonic() == before
    assert h.metric("llmrelay_retries_total", provider="b", reason="upstream_unavailable") == 1


async def test_retry_same_deployment_backs_off_with_jitter(harness: H, clock) -> None:
    h = harness(n=1, routing={"retries": 2})
    h.fake("a").script([ProviderUnavailableError("1"), ProviderUnavailableError("2")])
    before = clock.monotonic()
    result, ctx = await h.call("x")
    assert ctx.attempts == 3 and result.text == "You said: x"
    waited = clock.monotonic() - before
    # Two full-jitter waits: within [0, 0.1] and [0, 0.2].
    assert 0 < waited <= 0.1 + 0.2


async def test_retry_after_is_honoured(harness: H, clock) -> None:
    h = harness(n=1, routing={"retries": 1})
    h.fake("a").script([RateLimitError("slow down", retry_after=3.0)])
    before = clock.monotonic()
    _, ctx = await h.call()
    assert ctx.attempts == 2
    assert clock.monotonic() - before >= 3.0


async def test_non_retryable_error_is_not_retried(harness: H) -> None:
    h = harness()
    h.fake("a").script([InvalidRequestError("bad request")])
    with pytest.raises(InvalidRequestError):
        await h.call()
    assert len(h.fake("a").calls) == 1 and h.fake("b").calls == []


async def test_bad_key_is_routed_around_not_retried(harness: H) -> None:
    h = harness(routing={"retries": 3})
    err = AuthenticationError("invalid key", upstream_status=401)
    h.fake("a").script([err, err, err])
    for _ in range(3):
        _, ctx = await h.call()
        assert ctx.provider == "b"
    assert len(h.fake("a").calls) == 3
    assert len(h.fake("b").calls) == 3


async def test_retries_exhausted_raise_last_error(harness: H) -> None:
    h = harness(n=2, routing={"retries": 1})
    h.fake("a").script([ProviderUnavailableError("a1"), ProviderUnavailableError("a2")])
    h.fake("b").script([ProviderUnavailableError("b1")])
    with pytest.raises(ProviderUnavailableError) as info:
        await h.call()
    # 2 deployments + 1 retry = 3 attempts; the retry goes back to "a", the one tried first.
    assert "a2" in str(info.value)
    assert len(h.fake("a").calls) == 2 and len(h.fake("b").calls) == 1


async def test_breaker_opens_then_closes_after_trial(harness: H, clock) -> None:
    h = harness(routing={"circuit": {"failures": 3, "window_s": 10, "cooldown_s": 5}})
    h.fake("a").script([ProviderUnavailableError(str(i)) for i in range(3)])
    for _ in range(3):
        _, ctx = await h.call()
        assert ctx.provider == "b"
    row = next(r for r in router_status(h.services) if r["provider"] == "a")
    assert row["circuit"] == "open"
    assert h.metric("llmrelay_circuit_state", provider="a", model="model-a") == 2
    # While open, "a" is skipped without being called.
    calls = len(h.fake("a").calls)
    _, ctx = await h.call()
    assert ctx.provider == "b" and len(h.fake("a").calls) == calls
    # After the cooldown one trial goes to "a"; its success closes the breaker.
    clock.advance(5)
    _, ctx = await h.call()
    assert ctx.provider == "a"
    assert next(r for r in router_status(h.services) if r["provider"] == "a")["circuit"] == "closed"
    assert h.metric("llmrelay_circuit_state", provider="a", model="model-a") == 0


async def test_failed_trial_reopens(harness: H, clock) -> None:
    h = harness(routing={"circuit": {"failures": 1, "window_s": 10, "cooldown_s": 5}})
    h.fake("a").script([ProviderUnavailableError("1"), ProviderUnavailableError("2")])
    await h.call()
    clock.advance(5)
    _, ctx = await h.call()  # the trial fails, "b" answers
    assert ctx.provider == "b" and ctx.attempts == 2
    assert next(r for r in router_status(h.services) if r["provider"] == "a")["circuit"] == "open"


async def test_all_open_fails_fast_with_retry_after(harness: H) -> None:
    h = harness(routing={"circuit": {"failures": 1, "window_s": 10, "cooldown_s": 30}, "deadline_s": 5})
    h.fake("a").script([ProviderUnavailableError("a")])
    h.fake("b").script([ProviderUnavailableError("b")])
    with pytest.raises(ProviderUnavailableError):
        await h.call()
    with pytest.raises(ProviderUnavailableError) as info:
        await h.call()
    assert info.value.retry_after is not None and info.value.retry_after > 5
    assert "circuit open" in str(info.value)


async def test_429_cools_deployment_down(harness: H, clock) -> None:
    h = harness()
    h.fake("a").script([RateLimitError("slow", retry_after=10)])
    _, ctx = await h.call()
    assert ctx.provider == "b"
    _, ctx = await h.call()
    assert ctx.provider == "b"  # "a" is still cooling down
    clock.advance(10)
    _, ctx = await h.call()
    assert ctx.provider == "a"


async def test_deadline_bounds_retries(harness: H, clock) -> None:
    h = harness(n=1, routing={"retries": 50, "deadline_s": 2.0, "backoff": {"base_s": 1.0, "max_s": 1.0}})
    h.fake("a").script([ProviderUnavailableError(str(i)) for i in range(50)])
    before = clock.monotonic()
    with pytest.raises(ProviderUnavailableError):
        await h.call()
    assert clock.monotonic() - before <= 2.0
    assert len(h.fake("a").calls) < 50


async def test_stream_fails_over_before_first_chunk_only(harness: H) -> None:
    # Mid-stream continuation (routing.stream_recovery) is tested in tests/streaming.
    h = harness(routing={"stream_recovery": False})
    h.fake("a").script([StreamInterruptedError("cut before anything")])
    result, ctx = await h.call("abc", stream=True)
    assert ctx.provider == "b" and result.text == "You said: abc"

    async def cut_stream(request: ChatRequest) -> AsyncIterator[Chunk]:
        yield Chunk(text="partial")
        raise StreamInterruptedError("cut")

    h.fake("a").stream = cut_stream  # type: ignore[method-assign]
    seen: list[str] = []
    req_ctx = RequestContext()
    with pytest.raises(StreamInterruptedError):
        async for chunk in h.router.handle(ChatRequest(model="m", messages=(Message.user("x"),), stream=True), req_ctx):
            seen.append(chunk.text)
    assert seen == ["partial"]
    assert req_ctx.provider == "a"


async def test_provider_slash_model_reaches_provider_directly(harness: H) -> None:
    h = harness()
    _, ctx = await h.call("q", model="b/some-model")
    assert ctx.provider == "b" and ctx.upstream_model == "some-model"
    assert h.fake("b").calls[-1].model == "some-model"


async def test_unknown_model(harness: H) -> None:
    h = harness()
    with pytest.raises(ModelNotFoundError) as info:
        await h.call(model="nope")
    assert "available models: m" in str(info.value)


async def test_context_window_fallback_group(clock) -> None:
    from llmrelay.config import Settings

    from .conftest import Harness

    settings = Settings.from_dict(
        {
            "providers": {"a": {"kind": "fake"}, "big": {"kind": "fake"}},
            "models": {"m": [{"provider": "a", "model": "small"}], "large": [{"provider": "big", "model": "long"}]},
            "routing": {"context_window_fallbacks": {"m": "large"}},
        }
    )
    h = Harness(settings, clock)
    h.fake("a").script([ContextWindowExceededError("too long")])
    result, ctx = await h.call("long prompt")
    assert ctx.provider == "big" and ctx.upstream_model == "long"
    assert result.text == "You said: long prompt"


async def test_pin_and_strategy_override(harness: H) -> None:
    h = harness(n=3)
    _, ctx = await h.call(ctx=RequestContext(deployment="c"))
    assert ctx.provider == "c"
    with pytest.raises(ModelNotFoundError):
        await h.call(ctx=RequestContext(deployment="zzz"))
    with pytest.raises(ModelNotFoundError):
        await h.call(ctx=RequestContext(strategy="nonsense"))


async def test_deployment_rpm_is_enforced_by_skipping(clock) -> None:
    from llmrelay.config import Settings

    from .conftest import Harness

    settings = Settings.from_dict(
        {
            "providers": {"a": {"kind": "fake", "rpm": 2}, "b": {"kind": "fake"}},
            "models": {"m": [{"provider": "a", "model": "x"}, {"provider": "b", "model": "y"}]},
        }
    )
    h = Harness(settings, clock)
    providers = [(await h.call())[1].provider for _ in range(4)]
    assert providers == ["a", "a", "b", "b"]
    clock.advance(30)  # one request's worth of rpm refilled
    assert (await h.call())[1].provider == "a"
