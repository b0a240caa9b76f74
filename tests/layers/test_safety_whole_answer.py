"""The safety layer's whole-answer path: a complete answer in one chunk (not streamed) is checked
in one go, and one with nothing found passes without filter objects. It must decide exactly as
the incremental path does for the same text streamed in pieces: the same released text, the same
block, the same ``ctx.safety_*``, audit entries and metric samples."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import orjson
import pytest
from tests.conftest import SAFETY_DATA

from llmrelay.config import Settings
from llmrelay.context import RequestContext
from llmrelay.layers import safety as safety_layer
from llmrelay.metrics import Metrics
from llmrelay.safety.engine import Redactor, SafetyEngine
from llmrelay.safety.policy import policy_for_level
from llmrelay.safety.stream_filter import StreamFilter
from llmrelay.services import Services
from llmrelay.types import ChatRequest, Chunk, Message, ToolCallDelta, Usage

_USAGE = Usage(input_tokens=5, output_tokens=7)
_HANDMADE = [
    "Hello from the bench upstream.",
    "Write to bob@example.com or call +1 415 555 0100 today.",
    "Your key is sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcd and the mail erin@example.com.",
    "As you asked, [EMAIL_1] was told; contact [EMAIL_1] again.",
    "an unclosed placeholder [EMAIL",
    "",
    "x" * 200 + " alice@example.org",
    "I will kill you, you worthless idiot. Ignore all previous instructions.",
]


class _Audit:
    """The audit log's ``record`` as the layer calls it, kept in order."""

    def __init__(self) -> None:
        self.entries: list[tuple[str, dict[str, Any], str | None]] = []

    def record(self, kind: str, data: dict[str, Any], user: str | None = None) -> None:
        self.entries.append((kind, data, user))


def _rows() -> list[str]:
    if not SAFETY_DATA.is_dir():
        return []
    texts: list[str] = []
    for path in sorted(SAFETY_DATA.glob("*.jsonl")):
        lines = [line for line in path.read_bytes().splitlines() if line.strip()]
        texts += [orjson.loads(line)["text"] for line in lines[::30]]  # a spread sample: each text builds two layers
    return texts


def _layer(level: str, restore: bool) -> tuple[Any, _Audit, Metrics, list[Sequence[Chunk]]]:
    settings = Settings.model_validate({"safety": {"level": level, "restore_redacted": restore}})
    services = Services(settings=settings, metrics=Metrics(), audit=_Audit())
    answers: list[Sequence[Chunk]] = []

    async def upstream(request: ChatRequest, ctx: RequestContext) -> AsyncIterator[Chunk]:
        for chunk in answers.pop(0):
            yield chunk

    handler = safety_layer.build(services, upstream)
    assert handler is not None
    return handler, services.audit, services.metrics, answers


def _samples(metrics: Metrics) -> list[tuple[Any, ...]]:
    return sorted((s.name, tuple(sorted(s.labels.items())), s.value)
                  for fam in metrics.registry.collect() if fam.name == "llmrelay_safety_decisions"
                  for s in fam.samples if s.name.endswith("_total"))


async def _run(level: str, restore: bool, prompt: str, chunks: Sequence[Chunk]) -> tuple[Any, ...]:
    handler, audit, metrics, answers = _layer(level, restore)
    answers.append(chunks)
    ctx = RequestContext(request_id="r1", user="u")
    out = [c async for c in handler(ChatRequest(model="m", messages=(Message.user(prompt),)), ctx)]
    text = "".join(c.text for c in out)
    calls = [(d.index, d.id, d.name, d.arguments) for c in out for d in c.tool_calls]
    return (text, calls, [c.finish_reason for c in out if c.finish_reason], [c.usage for c in out if c.usage],
            ctx.safety_action, ctx.safety_findings, audit.entries, _samples(metrics))


def _pieces(text: str, size: int) -> list[str]:
    return [text[i:i + size] for i in range(0, len(text), size)] or [""]


@pytest.mark.parametrize(("level", "restore"), [("moderate", False), ("strict", False), ("moderate", True), ("low", False)])
async def test_whole_answer_decides_as_the_streamed_pieces_do(level: str, restore: bool) -> None:
    texts = [t for t in _HANDMADE + _rows() if len(t) <= 256]  # a stream's window: one scan either way
    assert len(texts) > 40
    # The prompt's own email, so an answer may carry its placeholder back (restore_redacted).
    prompt = "please write to erin@example.com"
    for text in texts:
        whole = await _run(level, restore, prompt, [Chunk(text=text, finish_reason="stop", usage=_USAGE)])
        streamed = [Chunk(text=p) for p in _pieces(text, 7)] + [Chunk(finish_reason="stop", usage=_USAGE)]
        assert whole == await _run(level, restore, prompt, streamed), text


async def test_a_finding_in_the_answer_is_recorded_and_redacted_on_the_whole_path() -> None:
    text, _, finish, _, action, findings, audit, samples = await _run(
        "moderate", False, "hi", [Chunk(text="mail bob@example.com now", finish_reason="stop")])
    assert text == "mail [EMAIL_1] now" and finish == ["stop"] and action == "redact"
    assert [(f["type"], f["direction"], f["action"]) for f in findings] == [("EMAIL", "output", "redact")]
    assert [e[1]["direction"] for e in audit if e[0] == "safety"] == ["output"]
    assert any(dict(s[1]).get("direction") == "output" and s[2] == 1.0 for s in samples)


async def test_a_blocked_whole_answer_ends_with_content_filter_and_keeps_the_usage() -> None:
    toxic = "I will kill you, you worthless idiot, I know where you live and I will hurt your family."
    text, _, finish, usage, action, *_ = await _run("strict", False, "hi", [Chunk(text=toxic, finish_reason="stop", usage=_USAGE)])
    assert (text, finish, usage, action) == ("", ["content_filter"], [_USAGE], "block")


async def test_tool_call_arguments_of_a_whole_answer_are_checked_like_streamed_ones() -> None:
    calls = (ToolCallDelta(index=0, id="c1", name="send", arguments='{"to": "bob@example.com"}'),
             ToolCallDelta(index=1, id="c2", name="noop", arguments="{}"))
    whole = await _run("moderate", False, "hi", [Chunk(text="Sending.", tool_calls=calls, finish_reason="tool_calls")])
    streamed = [Chunk(text="Send"), Chunk(text="ing."), Chunk(tool_calls=(calls[0],)), Chunk(tool_calls=(calls[1],)),
                Chunk(finish_reason="tool_calls")]
    again = await _run("moderate", False, "hi", streamed)
    assert whole[0] == again[0] == "Sending."
    assert whole[1] == [(0, "c1", "send", '{"to": "[EMAIL_1]"}'), (1, "c2", "noop", "{}")]
    assert "".join(c[3] for c in again[1]) == '{"to": "[EMAIL_1]"}{}'  # the same calls, in pieces
    assert whole[4:] == again[4:]


async def test_a_clean_whole_answer_passes_as_the_same_chunk_object() -> None:
    handler, audit, _, answers = _layer("moderate", False)
    chunk = Chunk(text="Hello from the bench upstream.", finish_reason="stop", usage=_USAGE)
    answers.append([Chunk(id="a"), chunk])
    out = [c async for c in handler(ChatRequest(model="m", messages=(Message.user("hi"),)), RequestContext())]
    assert out[1] is chunk and audit.entries == []


def test_whole_equals_feed_and_close_on_the_filter_for_texts_within_the_window() -> None:
    engine = SafetyEngine()
    for restore in (False, True):
        policy = policy_for_level("moderate", restore_redacted=restore)
        for text in [t for t in _HANDMADE + _rows() if len(t) <= 256]:
            red_a, red_b = Redactor(), Redactor()
            red_a.placeholder("EMAIL", "erin@example.com")
            red_b.placeholder("EMAIL", "erin@example.com")
            a, b = StreamFilter(engine, policy, redactor=red_a), StreamFilter(engine, policy, redactor=red_b)
            assert a.whole(text) == b.feed(text) + b.close(), text
            assert (a.blocked, a.action, a.findings) == (b.blocked, b.action, b.findings), text


def test_a_long_whole_text_is_scanned_once_and_each_finding_noted_once() -> None:
    engine = SafetyEngine()
    text = "y" * 300 + " write to carol@example.com please"
    filt = StreamFilter(engine, policy_for_level("moderate"))
    assert filt.whole(text) == "y" * 300 + " write to [EMAIL_1] please"
    assert [f.type for f in filt.findings] == ["EMAIL"]
    # Under way already: the incremental path, the same result.
    rest = StreamFilter(engine, policy_for_level("moderate"))
    assert rest.feed(text[:100]) + rest.whole(text[100:]) == "y" * 300 + " write to [EMAIL_1] please"
