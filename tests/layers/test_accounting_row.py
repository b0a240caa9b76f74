"""The ledger row is built from the slots directly (not LedgerRow's frozen __init__): it must be the
row the dataclass would build, field for field, for every kind of request end."""

from __future__ import annotations

from dataclasses import fields

import pytest

from llmrelay.context import RequestContext
from llmrelay.cost.ledger import LedgerRow
from llmrelay.errors import RateLimitError
from llmrelay.layers.accounting import ledger_row, prompt_hashes
from llmrelay.types import ChatRequest, Message, Usage

_REQUEST = ChatRequest(model="fast", messages=(Message.system("be terse"), Message.user("hi")))


def _reference(ctx: RequestContext, status: str, u: Usage | None) -> LedgerRow:
    """The row as LedgerRow's own __init__ makes it (what accounting built before)."""
    whole, prefix, prefix_tokens = prompt_hashes(_REQUEST)
    latency, ttft = ctx.latency_s, ctx.ttft_s
    return LedgerRow(
        ts=ctx.started_at, request_id=ctx.request_id, status=status,
        error_code=ctx.error.code if ctx.error is not None else None,
        key_id=ctx.key_id, user_id=ctx.user, team=ctx.team, session=ctx.session,
        model_group="group", provider=ctx.provider, model=ctx.upstream_model,
        input_tokens=u.input_tokens if u else 0, output_tokens=u.output_tokens if u else 0,
        cache_read_tokens=u.cache_read_tokens if u else 0, cache_write_tokens=u.cache_write_tokens if u else 0,
        reasoning_tokens=u.reasoning_tokens if u else 0,
        cost_usd=ctx.cost_usd, cost_saved_usd=ctx.cost_saved_usd, unpriced=ctx.unpriced,
        latency_ms=latency * 1000 if latency is not None else None,
        ttft_ms=ttft * 1000 if ttft is not None else None,
        cache_status=ctx.cache_status, joined=ctx.joined,
        prompt_hash=whole, prefix_hash=prefix, prefix_tokens=prefix_tokens,
        estimated=bool(u is not None and ctx.notes.get("usage_estimated")),
    )


def _answered() -> RequestContext:
    ctx = RequestContext(key_id="k_1", user="ann", team="t", session="s", provider="p", upstream_model="m-1",
                         usage=Usage(30, 12, 5, 3, 0, 4), cost_usd=0.0125, unpriced=True)
    ctx.first_chunk_mono, ctx.ended_mono = ctx.started_mono + 0.01, ctx.started_mono + 0.25
    ctx.notes["usage_estimated"] = True
    return ctx


def _hit() -> RequestContext:
    ctx = RequestContext(key_id="k_2", provider="p", cache_status="hit", usage=Usage(7, 3), cost_saved_usd=0.002)
    ctx.ended_mono = ctx.started_mono + 0.001
    return ctx


def _refused() -> RequestContext:
    ctx = RequestContext()
    ctx.error = RateLimitError("slow down")
    ctx.ended_mono = ctx.started_mono + 0.0001
    return ctx


def _joined() -> RequestContext:
    ctx = RequestContext(joined=True, usage=Usage(7, 3), cost_saved_usd=0.002)
    return ctx


@pytest.mark.parametrize(("make", "status"), [(_answered, "ok"), (_hit, "cached"), (_refused, "refused"),
                                              (_joined, "joined")])
def test_the_row_is_what_ledger_rows_init_builds(make: object, status: str) -> None:
    ctx = make()  # type: ignore[operator]
    end = (status, ctx.usage)
    row = ledger_row(_REQUEST, ctx, "group", end)
    expected = _reference(ctx, status, ctx.usage)
    assert type(row) is LedgerRow
    for f in fields(LedgerRow):
        assert getattr(row, f.name) == getattr(expected, f.name), f.name
    assert row == expected and hash(row) == hash(expected)
