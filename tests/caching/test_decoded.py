"""Hot cache entries kept decoded: the same bytes decode once, a changed entry is decoded afresh,
the memo is bounded, and a hit through the gateway never serves a replaced answer."""

from __future__ import annotations

from pathlib import Path

from llmrelay.caching.decoded import DecodedMemo
from llmrelay.caching.entry import CachedAnswer, encode, replay
from llmrelay.context import RequestContext
from llmrelay.types import ChatResult, Message, ToolCall, Usage

from .conftest import make_relay


def stored(text: str, calls: tuple[ToolCall, ...] = ()) -> bytes:
    result = ChatResult(id="r1", model="echo", text=text, tool_calls=calls,
                        finish_reason="tool_calls" if calls else "stop", usage=Usage(3, 4), provider="fake")
    return encode(CachedAnswer(result, "fake", "fake", "echo", 0.25, 1.0))


def test_the_same_bytes_decode_once_and_replay_as_replay_does() -> None:
    memo = DecodedMemo()
    raw = stored("x" * 3000, (ToolCall(id="c1", name="f", arguments="{}"),))
    first = memo.get("k", raw)
    again = memo.get("k", bytes(raw))  # an equal copy, as a Redis backend returns
    assert again is first
    for stream in (False, True):
        assert list(first.chunks(stream)) == replay(first.answer.result, stream)
        assert first.chunks(stream) is first.chunks(stream)
    assert len(first.chunks(True)) > len(first.chunks(False)) == 1


def test_a_changed_entry_is_decoded_afresh() -> None:
    memo = DecodedMemo()
    old = memo.get("k", stored("old answer"))
    new = memo.get("k", stored("new answer"))
    assert new is not old
    assert new.answer.result.text == "new answer"
    assert memo.get("k", stored("new answer")) is new and len(memo) == 1


def test_the_memo_is_bounded_by_entries_and_bytes() -> None:
    memo = DecodedMemo(max_entries=3)
    for i in range(5):
        memo.get(f"k{i}", stored(f"answer {i}"))
    assert len(memo) == 3
    # The oldest went first: k2..k4 are kept, k0 is decoded again.
    kept = memo.get("k4", stored("answer 4"))
    assert memo.get("k4", stored("answer 4")) is kept
    small = DecodedMemo(max_bytes=2 * len(stored("y" * 100)))
    for i in range(4):
        small.get(f"k{i}", stored("y" * 100))
    assert len(small) == 2
    huge, big = stored("z" * 400_000), DecodedMemo()
    assert big.get("k", huge) is not big.get("k", huge)  # too large to keep: decoded per hit
    assert len(big) == 0
    memo.clear()
    assert len(memo) == 0


async def test_a_refreshed_entry_is_what_the_next_hit_serves(tmp_path: Path) -> None:
    async with make_relay(tmp_path) as relay:
        fake = relay.services.providers["fake"]
        fake.script(["first answer", "second answer"])  # type: ignore[attr-defined]
        q = [Message.user("what changed")]
        assert (await relay.chat(model="m", messages=q, temperature=0)).text == "first answer"
        hit = await relay.chat(model="m", messages=q, temperature=0)
        assert hit.text == "first answer"
        refreshed = await relay.chat(model="m", messages=q, temperature=0, ctx=RequestContext(cache_mode="refresh"))
        assert refreshed.text == "second answer"
        ctx = RequestContext()
        assert (await relay.chat(model="m", messages=q, temperature=0, ctx=ctx)).text == "second answer"
        assert ctx.cache_status == "hit"
