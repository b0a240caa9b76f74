"""Tool-call arguments in answers go through the same incremental filter as text, per call."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from llmrelay import Message, Relay
from llmrelay.context import RequestContext
from llmrelay.types import ChatRequest, Chunk, ToolCallDelta


def _config(tmp_path: Path, level: str) -> dict[str, Any]:
    return {"providers": {"fake": {"kind": "fake"}}, "models": {"m": [{"provider": "fake", "model": "echo"}]},
            "storage": {"url": f"sqlite:///{tmp_path}/l.db"}, "safety": {"level": level, "audit": False, "learned": "off"}}


def _pieces(index: int, text: str, size: int) -> list[Chunk]:
    return [Chunk(tool_calls=(ToolCallDelta(index=index, arguments=text[i : i + size]),)) for i in range(0, len(text), size)]


async def _run(relay: Relay, steps: list[Chunk]) -> tuple[list[Chunk], RequestContext]:
    relay.services.providers["fake"].script([steps])  # type: ignore[attr-defined]
    ctx = RequestContext()
    req = ChatRequest(model="m", messages=(Message.user("send the mails"),), stream=True)
    return [c async for c in relay.handle(req, ctx)], ctx


def _arguments(chunks: list[Chunk]) -> dict[int, str]:
    out: dict[int, str] = {}
    for c in chunks:
        for d in c.tool_calls:
            out[d.index] = out.get(d.index, "") + d.arguments
    return out


async def test_tool_call_arguments_are_redacted_per_call_and_parts_keep_their_order(tmp_path: Path) -> None:
    a = json.dumps({"to": "grace.hopper@example.com", "body": "see you at noon"})
    b = json.dumps({"to": "alan@example.org", "card": "4539 1488 0343 6467"})
    steps = [Chunk(text="I will send "), Chunk(text="two mails."),
             Chunk(tool_calls=(ToolCallDelta(index=0, id="c0", name="send"),)), *_pieces(0, a, 5),
             Chunk(tool_calls=(ToolCallDelta(index=1, id="c1", name="send"),)), *_pieces(1, b, 3),
             Chunk(finish_reason="tool_calls")]
    async with Relay(_config(tmp_path, "moderate")) as relay:
        chunks, ctx = await _run(relay, steps)
    args = _arguments(chunks)
    assert json.loads(args[0]) == {"to": "[EMAIL_1]", "body": "see you at noon"}
    assert json.loads(args[1]) == {"to": "[EMAIL_2]", "card": "[CREDIT_CARD_1]"}
    assert chunks[-1].finish_reason == "tool_calls"
    # Parts come out in the order they went in: all the text, then call 0 whole, then call 1.
    order: list[str] = []
    for c in chunks:
        order += ["text"] * bool(c.text) + [f"call{d.index}" for d in c.tool_calls]
    assert [k for i, k in enumerate(order) if i == 0 or order[i - 1] != k] == ["text", "call0", "call1"]
    assert "".join(c.text for c in chunks) == "I will send two mails."
    first = [d for c in chunks for d in c.tool_calls if d.id]
    assert [(d.index, d.id, d.name) for d in first] == [(0, "c0", "send"), (1, "c1", "send")]
    assert {f["type"] for f in ctx.safety_findings if f["direction"] == "output"} == {"EMAIL", "CREDIT_CARD"}


async def test_secret_in_tool_arguments_blocks_the_stream_at_strict(tmp_path: Path) -> None:
    args = json.dumps({"cmd": "deploy", "token": "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"})
    steps = [Chunk(text="Running it now. "), Chunk(tool_calls=(ToolCallDelta(index=0, id="c0", name="shell"),)),
             *_pieces(0, args, 7), Chunk(finish_reason="tool_calls")]
    async with Relay(_config(tmp_path, "strict")) as relay:
        chunks, ctx = await _run(relay, steps)
    assert chunks[-1].finish_reason == "content_filter"
    assert "ghp_" not in _arguments(chunks).get(0, "")
    assert ctx.safety_action == "block"


async def test_clean_tool_arguments_pass_unchanged(tmp_path: Path) -> None:
    args = json.dumps({"city": "Lisbon", "days": 3})
    steps = [Chunk(tool_calls=(ToolCallDelta(index=0, id="c0", name="weather"),)), *_pieces(0, args, 4), Chunk(finish_reason="tool_calls")]
    async with Relay(_config(tmp_path, "moderate")) as relay:
        chunks, ctx = await _run(relay, steps)
    assert _arguments(chunks) == {0: args}
    assert ctx.safety_findings == []


async def test_non_streamed_answer_with_tool_call_is_filtered(tmp_path: Path) -> None:
    args = json.dumps({"to": "ada@example.net"})
    steps = [Chunk(tool_calls=(ToolCallDelta(index=0, id="c0", name="send", arguments=args),)), Chunk(finish_reason="tool_calls")]
    async with Relay(_config(tmp_path, "moderate")) as relay:
        relay.services.providers["fake"].script([steps])  # type: ignore[attr-defined]
        result = await relay.chat(ChatRequest(model="m", messages=(Message.user("mail ada"),)))
    assert [json.loads(t.arguments) for t in result.tool_calls] == [{"to": "[EMAIL_1]"}]
