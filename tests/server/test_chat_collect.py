"""The edge's collection of a non-streamed answer: the one-whole-chunk shortcut gives exactly the
result the Assembler gives, for every chunk shape, and longer streams still go through it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import pytest

from llmrelay.context import RequestContext
from llmrelay.server._chat import collect
from llmrelay.streaming import Assembler
from llmrelay.types import ChatResult, Chunk, ToolCallDelta, Usage

USAGE = Usage(input_tokens=12, output_tokens=7)

SHAPES: list[Sequence[Chunk]] = [
    [],
    [Chunk(text="Hello.", finish_reason="stop", usage=USAGE, id="c1", model="m")],
    [Chunk(text="Hello.", finish_reason="length")],
    [Chunk(text="", finish_reason="stop", usage=USAGE)],
    [Chunk(text="x")],  # no finish reason
    [Chunk(text="a", reasoning="think", reasoning_signature="sig", finish_reason="stop", id="i", model="m")],
    [Chunk(text="a", reasoning_signature="", finish_reason="stop")],
    [Chunk(tool_calls=(ToolCallDelta(index=0, id="t", name="f", arguments='{"a":1}'),), finish_reason="stop")],
    [Chunk(text="one", choice=1, finish_reason="stop"), Chunk(text="zero", finish_reason="stop", usage=USAGE)],
    [Chunk(text="only a later answer", choice=1, finish_reason="stop")],
    [Chunk(text="Hel", id="c"), Chunk(text="lo", finish_reason="stop", usage=USAGE, model="m")],
    [Chunk(id="c", model="m"), Chunk(text="Hi", finish_reason="stop"), Chunk(usage=USAGE)],
]


async def _chunks(shape: Sequence[Chunk]) -> AsyncIterator[Chunk]:
    for c in shape:
        yield c


def _assembled(shape: Sequence[Chunk], provider: str | None) -> ChatResult:
    asm = Assembler()
    for c in shape:
        asm.add(c)
    return asm.result(provider=provider)


@pytest.mark.parametrize("shape", SHAPES, ids=range(len(SHAPES)))
@pytest.mark.parametrize("provider", [None, "up"])
async def test_collect_equals_the_assembler(shape: Sequence[Chunk], provider: str | None) -> None:
    ctx = RequestContext(provider=provider)
    assert await collect(_chunks(shape), ctx) == _assembled(shape, provider)
