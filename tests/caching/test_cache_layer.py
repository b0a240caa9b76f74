"""The cache layer through a Relay: hits, misses, policies, TTLs, cost accounting and invalidation."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from llmrelay import Relay
from llmrelay.caching.service import ResponseCache
from llmrelay.clock import ManualClock
from llmrelay.config import Settings
from llmrelay.context import RequestContext
from llmrelay.errors import InvalidRequestError, ProviderUnavailableError
from llmrelay.layers import cache as cache_layer
from llmrelay.services import Services
from llmrelay.streaming import Assembler
from llmrelay.testing import FakeProvider
from llmrelay.types import ChatRequest, ChatResult, Chunk, Message, ToolCall, Usage

from .conftest import make_relay

Q = [Message.user("what is the capital of France")]


def fake(relay: Relay) -> FakeProvider:
    p = relay.services.providers["fake"]
    assert isinstance(p, FakeProvider)
    return p


async def ask(relay: Relay, stream: bool = False, messages: list[Message] = Q, model: str = "m",
              ctx: RequestContext | None = None, **params: Any) -> tuple[ChatResult, RequestContext, int]:
    ctx = ctx or RequestContext()
    params.setdefault("temperature", 0)
    if stream:
        asm, n = Assembler(), 0
        async for c in relay.stream(model=model, messages=messages, ctx=ctx, **params):
            asm.add(c)
            n += 1
        return asm.result(), ctx, n
    return await relay.chat(model=model, messages=messages, ctx=ctx, **params), ctx, 1


@pytest.mark.parametrize(("first", "second"), [(False, False), (True, True), (True, False), (False, True)])
async def test_hit_serves_the_same_answer_across_stream_modes(tmp_path: Path, first: bool, second: bool) -> None:
    async with make_relay(tmp_path) as relay:
        a, c1, _ = await ask(relay, stream=first)
        b, c2, _ = await ask(relay, stream=second)
        assert len(fake(relay).calls) == 1
        assert (c1.cache_status, c2.cache_status) == ("miss", "hit")
        assert (b.text, b.finish_reason, b.usage) == (a.text, a.finish_reason, a.usage)
        assert c2.provider == "fake" and c2.upstream_model == "echo"


async def test_hit_costs_nothing_and_records_the_saving(tmp_path: Path) -> None:
    async with make_relay(tmp_path) as relay:
        _, miss, _ = await ask(relay)
        _, hit, _ = await ask(relay)
        assert miss.cost_usd > 0
        assert hit.cost_usd == 0.0
        assert hit.cost_saved_usd == pytest.approx(miss.cost_usd)
        assert hit.usage == miss.usage
        assert hit.status == "cached"
        m = relay.services.metrics
        assert m.cache.labels(result="hit")._value.get() == 1
        assert m.cache.labels(result="miss")._value.get() == 1
        assert m.cache_saved.labels(source="cache")._value.get() == pytest.approx(miss.cost_usd)


async def test_hits_are_not_charged_to_budgets(tmp_path: Path) -> None:
    budgets = [{"scope": "global", "period": "total", "limit_usd": 100.0}]
    async with make_relay(tmp_path, budgets=budgets) as relay:
        _, first, _ = await ask(relay)
        for _ in range(5):
            await ask(relay)
        status = await relay.services.budgets.status()
        assert status[0]["spent_usd"] == pytest.approx(first.cost_usd, abs=1e-6)


async def test_tool_call_answers_replay_with_their_calls(tmp_path: Path) -> None:
    async with make_relay(tmp_path) as relay:
        call = ToolCall(id="c1", name="lookup", arguments='{"city": "Paris"}')
        fake(relay).script([ChatResult(id="r1", model="echo", tool_calls=(call,), finish_reason="tool_calls",
                                       usage=Usage(10, 5))])
        a, _, _ = await ask(relay)
        b, ctx, _ = await ask(relay, stream=True)
        assert ctx.cache_status == "hit"
        assert b.tool_calls == a.tool_calls == (call,)
        assert b.finish_reason == "tool_calls"


async def test_a_long_streamed_hit_is_a_few_chunks_not_one_per_token(tmp_path: Path) -> None:
    async with make_relay(tmp_path) as relay:
        long_text = "word " * 1000
        fake(relay).chunk_size = 5
        fake(relay).script([long_text])
        a, _, n_miss = await ask(relay, stream=True)
        b, ctx, n_hit = await ask(relay, stream=True)
        assert ctx.cache_status == "hit" and b.text == a.text == long_text
        assert n_miss > 10 * n_hit
        assert 2 <= n_hit <= len(long_text) // 1024 + 3


async def test_nondeterministic_requests_are_not_cached_by_default(tmp_path: Path) -> None:
    async with make_relay(tmp_path) as relay:
        for _ in range(2):
            _, ctx, _ = await ask(relay, temperature=0.8)
            assert ctx.cache_status == "off"
        _, ctx, _ = await ask(relay, temperature=0.8, seed=7)
        _, ctx, _ = await ask(relay, temperature=0.8, seed=7)
        assert ctx.cache_status == "hit"
        assert len(fake(relay).calls) == 3


async def test_nondeterministic_requests_cached_when_configured(tmp_path: Path) -> None:
    async with make_relay(tmp_path, cache={"cache_nondeterministic": True}) as relay:
        await ask(relay, temperature=0.8)
        _, ctx, _ = await ask(relay, temperature=0.8)
        assert ctx.cache_status == "hit" and len(fake(relay).calls) == 1


async def test_no_store_and_refresh(tmp_path: Path) -> None:
    async with make_relay(tmp_path) as relay:
        f = fake(relay)
        f.script(["first"])
        _, ctx, _ = await ask(relay, ctx=RequestContext(cache_mode="no-store"))
        assert ctx.cache_status == "off"
        f.script(["second"])
        r, ctx, _ = await ask(relay)
        assert (r.text, ctx.cache_status) == ("second", "miss")
        f.script(["third"])
        r, ctx, _ = await ask(relay, ctx=RequestContext(cache_mode="refresh"))
        assert (r.text, ctx.cache_status) == ("third", "miss")
        r, ctx, _ = await ask(relay)
        assert (r.text, ctx.cache_status) == ("third", "hit")
        assert len(f.calls) == 3


async def test_refusals_and_errors_are_never_cached_but_length_is(tmp_path: Path) -> None:
    async with make_relay(tmp_path) as relay:
        f = fake(relay)
        f.script([[Chunk(text="I can't"), Chunk(finish_reason="content_filter", usage=Usage(3, 2))],
                  InvalidRequestError("bad", provider="fake"), "fine"])
        _, ctx, _ = await ask(relay)
        assert ctx.cache_status == "miss"
        with pytest.raises(InvalidRequestError):
            await ask(relay)
        r, ctx, _ = await ask(relay)
        assert (r.text, ctx.cache_status) == ("fine", "miss")
        r, ctx, _ = await ask(relay)
        assert (r.text, ctx.cache_status) == ("fine", "hit")

        f.script([[Chunk(text="cut"), Chunk(finish_reason="length", usage=Usage(3, 1))]])
        await ask(relay, max_tokens=1)
        r, ctx, _ = await ask(relay, max_tokens=1)
        assert (r.text, r.finish_reason, ctx.cache_status) == ("cut", "length", "hit")


async def test_ttl_expiry_and_ttl_by_model(tmp_path: Path, clock: ManualClock) -> None:
    async with make_relay(tmp_path, clock, cache={"ttl_s": 100, "ttl_by_model": {"other": 10}}) as relay:
        await ask(relay)
        await ask(relay, model="other")
        clock.advance(50)
        assert (await ask(relay))[1].cache_status == "hit"
        assert (await ask(relay, model="other"))[1].cache_status == "miss"
        clock.advance(51)
        assert (await ask(relay))[1].cache_status == "miss"
        assert len(fake(relay).calls) == 4


async def test_scope_per_key_keeps_callers_apart(tmp_path: Path) -> None:
    async with make_relay(tmp_path, cache={"scope": "key"}) as relay:
        await ask(relay, ctx=RequestContext(key_id="a"))
        assert (await ask(relay, ctx=RequestContext(key_id="b")))[1].cache_status == "miss"
        assert (await ask(relay, ctx=RequestContext(key_id="a")))[1].cache_status == "hit"
    async with make_relay(tmp_path / "g") as relay:
        await ask(relay, ctx=RequestContext(key_id="a"))
        assert (await ask(relay, ctx=RequestContext(key_id="b")))[1].cache_status == "hit"


async def test_replayed_workload_with_30_percent_repeats(tmp_path: Path, clock: ManualClock) -> None:
    """700 distinct prompts, 300 exact repeats of earlier ones, shuffled deterministically."""
    import random

    rng = random.Random(5)
    distinct = [f"question number {i} about topic {i % 17}" for i in range(700)]
    workload = distinct + [rng.choice(distinct[:350]) for _ in range(300)]
    # Repeats come after their original: shuffle the repeats among the second half only.
    tail = workload[350:]
    rng.shuffle(tail)
    workload = workload[:350] + tail
    async with make_relay(tmp_path, clock, cache={"ttl_s": 3600}) as relay:
        seen: set[str] = set()
        repeat_hits = repeats = 0
        for prompt in workload:
            clock.advance(1)
            _, ctx, _ = await ask(relay, messages=[Message.user(prompt)])
            if prompt in seen:
                repeats += 1
                repeat_hits += ctx.cache_status == "hit"
            seen.add(prompt)
        calls = len(fake(relay).calls)
        assert repeats == 300 and repeat_hits == repeats
        assert calls == len(workload) - repeats  # 30% fewer upstream calls
        # Past the TTL every prompt goes upstream again.
        clock.advance(3601)
        _, ctx, _ = await ask(relay, messages=[Message.user(workload[-1])])
        assert ctx.cache_status == "miss"


async def test_clear_all_by_group_and_by_key(tmp_path: Path) -> None:
    async with make_relay(tmp_path) as relay:
        _, c1, _ = await ask(relay)
        await ask(relay, model="other")
        cache: ResponseCache = relay.services.state["cache.service"][1]
        assert await cache.clear(group="other") == 1
        assert (await ask(relay))[1].cache_status == "hit"
        assert (await ask(relay, model="other"))[1].cache_status == "miss"
        assert await cache.clear(key=c1.notes[cache_layer.KEY_NOTE]) == 1
        assert (await ask(relay))[1].cache_status == "miss"
        assert await cache.clear() == 2


async def test_cache_survives_a_reload_with_the_same_cache_settings(tmp_path: Path) -> None:
    async with make_relay(tmp_path) as relay:
        await ask(relay)
        data = relay.settings.model_dump()
        data["routing"]["retries"] = 1
        await relay.reload(Settings.from_dict(data))
        assert (await ask(relay))[1].cache_status == "hit"


async def test_sqlite_cache_survives_a_restart(tmp_path: Path) -> None:
    cfg = {"backend": "sqlite", "url": f"sqlite:///{tmp_path / 'cache.db'}"}
    async with make_relay(tmp_path, cache=cfg) as relay:
        await ask(relay)
    async with make_relay(tmp_path, cache=cfg) as relay:
        r, ctx, _ = await ask(relay)
        assert ctx.cache_status == "hit" and r.text == "You said: what is the capital of France"
        assert fake(relay).calls == []


async def test_redis_cache_is_shared_by_two_relays(tmp_path: Path, redis_url: str) -> None:
    cfg = {"backend": "redis", "url": redis_url}
    async with make_relay(tmp_path, cache=cfg) as one, make_relay(tmp_path, cache=cfg) as two:
        await one.services.state["cache.service"][1].clear()
        await ask(one)
        await one.services.state["cache.service"][1].drain()
        _, ctx, _ = await ask(two)
        assert ctx.cache_status == "hit" and fake(two).calls == []


# ---- the layer alone, against hand-written upstream streams -------------------------------------


async def _run(handler: Any, request: ChatRequest, ctx: RequestContext) -> list[Chunk]:
    return [c async for c in handler(request, ctx)]


@pytest.mark.parametrize("ending", ["no finish", "error", "caller left"])
async def test_incomplete_streams_are_not_stored(ending: str) -> None:
    services = Services(settings=Settings.from_dict({"cache": {"enabled": True}}), clock=ManualClock())
    calls = 0

    async def upstream(request: ChatRequest, ctx: RequestContext) -> AsyncIterator[Chunk]:
        nonlocal calls
        calls += 1
        yield Chunk(text="partial ")
        yield Chunk(text="answer")
        if ending == "error" and calls == 1:
            raise ProviderUnavailableError("cut", provider="x")

    handler = cache_layer.build(services, upstream)
    assert handler is not None
    req = ChatRequest(model="m", messages=(Message.user("q"),), temperature=0, stream=True)
    if ending == "caller left":
        agen = handler(req, RequestContext())
        await agen.__anext__()
        await agen.aclose()
    elif ending == "error":
        with pytest.raises(ProviderUnavailableError):
            await _run(handler, req, RequestContext())
    else:
        await _run(handler, req, RequestContext())
    ctx = RequestContext()
    await _run(handler, req, ctx)
    assert ctx.cache_status == "miss" and calls == 2


def test_layer_is_left_out_when_caching_is_off() -> None:
    services = Services(settings=Settings.from_dict({}))

    async def upstream(request: ChatRequest, ctx: RequestContext) -> AsyncIterator[Chunk]:
        yield Chunk()

    assert cache_layer.build(services, upstream) is None
