"""The ledger row's prompt hashes on a cache hit are remembered by cache key, and the row is the
same as hashing anew: a remembered entry is used only for equal model, messages and tools."""

from __future__ import annotations

from llmrelay.context import RequestContext
from llmrelay.layers.accounting import HitHashes, ledger_row, prompt_hashes
from llmrelay.layers.cache import KEY_NOTE
from llmrelay.types import ChatRequest, Message, Tool

_TOOL = Tool(name="get", description="get it", parameters={"type": "object"})


def _request(user: str, system: str = "be terse", model: str = "m", tools: tuple[Tool, ...] = ()) -> ChatRequest:
    return ChatRequest(model=model, messages=(Message.system(system), Message.user(user)), tools=tools)


def _hit(key: str) -> RequestContext:
    ctx = RequestContext(cache_status="hit")
    ctx.notes[KEY_NOTE] = key
    return ctx


def test_a_hit_gets_the_same_hashes_as_hashing_anew_and_reuses_them() -> None:
    memo = HitHashes()
    first = memo.get(_request("hi"), _hit("k1"))
    again = memo.get(_request("hi"), _hit("k1"))  # a new, equal request: the remembered tuple
    assert first == prompt_hashes(_request("hi")) and again is first


def test_what_the_hashes_read_must_match_whatever_the_key_says() -> None:
    memo = HitHashes()
    memo.get(_request("hi"), _hit("k1"))
    for other in (_request("hello"), _request("hi", system="be kind"), _request("hi", model="n"),
                  _request("hi", tools=(_TOOL,))):
        # The same cache key (e.g. a layer below rewrote the prompt), another prompt: hashed anew.
        assert memo.get(other, _hit("k1")) == prompt_hashes(other)


def test_misses_and_uncached_requests_are_hashed_and_not_remembered() -> None:
    memo = HitHashes(max_entries=2)
    miss = RequestContext(cache_status="miss")
    miss.notes[KEY_NOTE] = "k"
    assert memo.get(_request("a"), miss) == prompt_hashes(_request("a"))
    assert memo.get(_request("a"), RequestContext()) == prompt_hashes(_request("a"))
    assert len(memo._entries) == 0
    for i in range(5):
        memo.get(_request(str(i)), _hit(f"k{i}"))
    assert len(memo._entries) <= 2


def test_the_ledger_row_of_a_hit_is_the_same_with_and_without_the_memo() -> None:
    memo = HitHashes()
    request = _request("hi", tools=(_TOOL,))
    ctx = _hit("k")
    memo.get(request, ctx)
    assert ledger_row(request, ctx, "m", hashes=memo) == ledger_row(request, ctx, "m")
