"""accounting.final_status: the ledger status of each way a request can end."""

from __future__ import annotations

import asyncio

import pytest

from llmrelay.context import RequestContext
from llmrelay.errors import BudgetExceededError, ProviderError, RateLimitError
from llmrelay.layers.accounting import final_status


def _ctx(provider: str | None = None, **fields: object) -> RequestContext:
    ctx = RequestContext(**fields)  # type: ignore[arg-type]
    ctx.provider = provider
    return ctx


@pytest.mark.parametrize(("exc", "ctx", "status"), [
    (None, _ctx("p"), "ok"),
    (None, _ctx(cache_status="hit"), "cached"),
    (None, _ctx("p", joined=True), "joined"),
    (RateLimitError("slow down", retry_after=1.0), _ctx(), "refused"),
    (BudgetExceededError("spent"), _ctx(), "refused"),
    # A 4xx after a provider was called is the provider's failure, not the gateway's refusal.
    (RateLimitError("upstream 429", retry_after=1.0), _ctx("p"), "error"),
    (ProviderError("bad gateway"), _ctx(), "error"),
    (GeneratorExit(), _ctx("p"), "cancelled"),
    (asyncio.CancelledError(), _ctx("p"), "cancelled"),
    (ValueError("bug"), _ctx("p"), "error"),
])
def test_final_status(exc: BaseException | None, ctx: RequestContext, status: str) -> None:
    assert final_status(exc, ctx) == status


def test_a_status_set_inside_is_kept() -> None:
    ctx = _ctx("p")
    ctx.status = "refused"  # e.g. a safety block that ended the stream without raising
    assert final_status(None, ctx) == "refused"
