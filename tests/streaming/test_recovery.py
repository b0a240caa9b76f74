"""Mid-stream recovery with scripted deployments: splice, overlap, usage, refusals, stalls."""

from __future__ import annotations

import asyncio

import pytest

from llmrelay.errors import InvalidRequestError, StreamInterruptedError
from llmrelay.routing.recovery import overlap
from llmrelay.types import Chunk, ToolCallDelta, Usage

from .conftest import Harness

CUT = StreamInterruptedError("the upstream closed the connection mid-answer")


def done(usage: Usage) -> Chunk:
    return Chunk(finish_reason="stop", usage=usage)


async def test_broken_stream_is_continued_seamlessly_with_a_prefill(harness: type[Harness]) -> None:
    h = harness()
    h.fakes["a"].scripts = [(["The river ", "runs "], CUT), (["to the sea.", done(Usage(20, 4))], None)]
    result, ctx, _ = await h.stream()
    assert result.text == "The river runs to the sea."
    cont = h.fakes["a"].calls[1]
    assert cont.messages[-1].role == "assistant" and cont.messages[-1].text() == "The river runs "
    assert ctx.recovered and ctx.provider == "a"
    # Input of both attempts (the cut one estimated) plus the output of both.
    assert result.usage.input_tokens > 20 and result.usage.output_tokens >= 4 + 3
    assert ctx.usage == result.usage and ctx.notes.get("usage_estimated")
    assert h.metric("llmrelay_streams_total", outcome="recovered") == 1
    assert h.fakes["a"].closed == 2


async def test_continuation_that_repeats_the_tail_is_trimmed(harness: type[Harness]) -> None:
    h = harness()
    h.fakes["a"].scripts = [(["The quick brown fo"], CUT), (["brown ", "fox jumps.", done(Usage(5, 5))], None)]
    result, _, _ = await h.stream()
    assert result.text == "The quick brown fox jumps."


async def test_whitespace_dropped_by_the_prefill_is_not_doubled(harness: type[Harness]) -> None:
    h = harness()
    h.fakes["a"].scripts = [(["Hello "], CUT), ([" world", done(Usage(5, 5))], None)]
    result, _, _ = await h.stream()
    assert result.text == "Hello world"


def test_overlap_needs_length_or_whitespace() -> None:
    assert overlap("abc Missi", "ssippi") == 0
    assert overlap("one two three", "two three four") == 9
    assert overlap("end.\n\n", "\n\nNext") == 2
    assert overlap("", "x") == 0


async def test_second_break_moves_to_the_next_deployment(harness: type[Harness]) -> None:
    h = harness(routing={"retries": 0})
    h.fakes["a"].scripts = [(["One, "], CUT), (["two, "], CUT)]
    h.fakes["b"].scripts = [(["three.", done(Usage(9, 3))], None)]
    result, ctx, _ = await h.stream()
    assert result.text == "One, two, three."
    assert ctx.provider == "b"
    assert h.fakes["b"].calls[0].messages[-1].text() == "One, two, "


async def test_half_sent_tool_call_fails_with_a_clear_error(harness: type[Harness]) -> None:
    h = harness()
    call = Chunk(tool_calls=(ToolCallDelta(0, "c1", "lookup", '{"q": "ri'),))
    h.fakes["a"].scripts = [([call], CUT)]
    with pytest.raises(StreamInterruptedError, match=r"tool call .*retry the request"):
        await h.stream()
    assert h.metric("llmrelay_streams_total", outcome="failed") == 1


async def test_no_deployment_with_prefill_fails_cleanly(harness: type[Harness]) -> None:
    h = harness(prefill=(False, False))
    h.fakes["a"].scripts = [(["partial"], CUT)]
    with pytest.raises(StreamInterruptedError, match="prefill"):
        await h.stream()
    assert len(h.fakes["a"].calls) == 1 and not h.fakes["b"].calls


async def test_non_retryable_errors_are_not_recovered(harness: type[Harness]) -> None:
    h = harness()
    h.fakes["a"].scripts = [(["partial"], InvalidRequestError("bad"))]
    with pytest.raises(InvalidRequestError):
        await h.stream()


async def test_attempts_are_bounded(harness: type[Harness]) -> None:
    h = harness(n=1, routing={"stream_recovery_attempts": 2, "retries": 0})
    h.fakes["a"].scripts = [(["a"], CUT), (["b"], CUT), (["c"], CUT)]
    with pytest.raises(StreamInterruptedError, match="2 continuation"):
        await h.stream()
    assert len(h.fakes["a"].calls) == 3


async def test_recovery_can_be_turned_off(harness: type[Harness]) -> None:
    h = harness(routing={"stream_recovery": False})
    h.fakes["a"].scripts = [(["partial"], CUT)]
    with pytest.raises(StreamInterruptedError):
        await h.stream()


async def test_a_stall_is_recovered(harness: type[Harness]) -> None:
    h = harness(routing={"stall_timeout_s": 0.05})
    never = asyncio.Event()

    async def stalls(request):  # type: ignore[no-untyped-def]
        h.fakes["a"].calls.append(request)
        yield Chunk(text="Slow ", id="x")
        await never.wait()

    h.fakes["a"].stream = stalls  # type: ignore[method-assign]
    h.fakes["b"].scripts = [(["and steady.", done(Usage(3, 3))], None)]
    h.fakes["a"].capabilities = type(h.fakes["a"].capabilities)(prefill=False)  # type: ignore[misc]
    result, ctx, _ = await h.stream()
    assert result.text == "Slow and steady." and ctx.provider == "b"


async def test_cancelled_stream_is_accounted_with_an_estimate(harness: type[Harness]) -> None:
    h = harness()
    h.fakes["a"].scripts = [(["word " * 10] * 50, None)]
    from llmrelay.context import RequestContext
    from llmrelay.types import ChatRequest, Message

    ctx = RequestContext()
    agen = h.router.handle(ChatRequest(model="m", messages=(Message.user("hi"),), stream=True), ctx)
    for _ in range(3):
        await anext(agen)
    await agen.aclose()
    assert h.fakes["a"].closed == 1  # the upstream generator was closed
    assert ctx.usage is not None and ctx.usage.output_tokens == 3 * 50 // 4 + 1
    assert ctx.notes["usage_estimated"] and ctx.tokens_so_far == ctx.usage.output_tokens
    assert h.metric("llmrelay_streams_total", outcome="cancelled") == 1


async def test_completed_stream_counts_and_keeps_upstream_usage(harness: type[Harness]) -> None:
    h = harness()
    h.fakes["a"].scripts = [(["a", "b", done(Usage(2, 2))], None)]
    result, ctx, _ = await h.stream()
    assert result.text == "ab" and not ctx.recovered and ctx.usage == Usage(2, 2)
    assert "usage_estimated" not in ctx.notes
    assert h.metric("llmrelay_streams_total", outcome="completed") == 1
    assert h.metric("llmrelay_stream_inter_chunk_seconds_count", provider="a") >= 2
