"""The safety layer's verdict memo: the same decisions with and without it, bounded, never stale,
bypassed for what may vary (moderation, the learned scorer), and every request still recorded."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import orjson
import pytest
from tests.conftest import SAFETY_DATA

from llmrelay import Message, Relay
from llmrelay.config import Settings
from llmrelay.context import RequestContext
from llmrelay.errors import ContentPolicyError
from llmrelay.layers._verdict_memo import MemoisedEngine, VerdictMemo
from llmrelay.safety.engine import Redactor, SafetyEngine
from llmrelay.safety.findings import Finding
from llmrelay.safety.policy import policy_for_level
from llmrelay.safety.stream_filter import StreamFilter
from llmrelay.types import ChatRequest

_ENGINE = SafetyEngine()


def _rows() -> list[str]:
    if not SAFETY_DATA.is_dir():
        pytest.skip("the public safety rows (../shared/data/safety) are absent")
    texts: list[str] = []
    for path in sorted(SAFETY_DATA.glob("*.jsonl")):
        lines = path.read_bytes().splitlines()
        texts += [orjson.loads(line)["text"] for line in lines[::4] if line.strip()]  # a quarter of each file
    return texts


@pytest.mark.parametrize("level", ["moderate", "strict"])
def test_same_decisions_with_and_without_the_memo_over_the_public_rows(level: str) -> None:
    policy = policy_for_level(level)
    memo = VerdictMemo(max_entries=100_000, max_bytes=1 << 30)
    memoised = MemoisedEngine(_ENGINE, memo)
    texts = _rows()
    decided = 0
    for direction in ("input", "output"):
        for text in texts:
            plain = _ENGINE.decide(text, _ENGINE.scan(text, policy, direction, learned=False), policy, Redactor())
            for _ in range(2):  # a miss that fills the memo, then a hit
                found = memoised.scan(text, policy, direction, learned=False)
                assert memoised.decide(text, found, policy, Redactor()) == plain
            decided += plain.action != "allow"
    assert decided > len(texts) // 4  # the rows do exercise redactions and blocks
    assert memo.hits + memo.misses == 4 * len(texts) and memo.hits >= 2 * len(texts)


def test_a_streamed_answer_filtered_through_the_memo_is_unchanged() -> None:
    policy = policy_for_level("moderate")
    answer = "Sure: mail erin@example.com or call 415-555-0132; the key is AKIAIOSFODNN7EXAMPLE. " * 12
    pieces = [answer[i:i + 1024] for i in range(0, len(answer), 1024)]  # the cache's replay pieces

    def filtered(engine: SafetyEngine) -> tuple[str, list[Finding]]:
        f = StreamFilter(engine, policy)
        return "".join(f.feed(p) for p in pieces) + f.close(), f.findings

    memo = VerdictMemo()
    memoised = MemoisedEngine(_ENGINE, memo)
    expected = filtered(_ENGINE)
    assert filtered(memoised) == expected
    misses = memo.misses
    assert filtered(memoised) == expected
    assert memo.misses == misses and memo.hits >= misses  # the replay's windows all came from the memo
    assert "[EMAIL_1]" in expected[0]


def test_the_memo_is_bounded_in_entries_and_bytes_and_keeps_the_recent() -> None:
    policy = policy_for_level("moderate")
    memo = VerdictMemo(max_entries=3, max_bytes=10_000, max_text=2_000)
    for i in range(3):
        memo.put(policy, "input", f"text {i}", ())
    assert memo.get(policy, "input", "text 0") == ()  # now the most recent
    memo.put(policy, "input", "text 3", ())
    assert len(memo) == 3
    assert memo.get(policy, "input", "text 1") is None  # the least recently used went
    assert memo.get(policy, "input", "text 0") == ()
    memo.put(policy, "input", "x" * 2_001, ())  # too long to be worth keeping
    assert memo.get(policy, "input", "x" * 2_001) is None
    for i in range(3):
        memo.put(policy, "input", chr(65 + i) * 1_900, ())
    assert memo.bytes <= 10_000 and len(memo) <= 3
    memo.clear()
    assert len(memo) == 0 and memo.bytes == 0


def test_entries_are_per_policy_object_direction_and_exact_text() -> None:
    memo = VerdictMemo()
    a, b = policy_for_level("moderate"), policy_for_level("moderate")  # equal, but another generation's
    found = (Finding("pii", 0, 3, 0.9, "EMAIL"),)
    memo.put(a, "input", "abc", found)
    assert memo.get(a, "input", "abc") == found
    assert memo.get(b, "input", "abc") is None
    assert memo.get(a, "output", "abc") is None
    assert memo.get(a, "input", "abd") is None


def test_callers_may_change_what_they_get_without_changing_the_memo() -> None:
    policy = policy_for_level("moderate")
    memoised = MemoisedEngine(_ENGINE, VerdictMemo())
    text = "write to erin@example.com"
    first = memoised.scan(text, policy, learned=False)
    first.append(Finding("moderation", 0, 1, 1.0))  # what the layer does with a moderation hit
    first[0] = Finding("pii", 0, 1, 0.1)  # what merge_learned does in place
    assert memoised.scan(text, policy, learned=False) == _ENGINE.scan(text, policy, learned=False)


class _VaryingScorer:
    """A learned scorer whose answer changes from call to call (as a model's may)."""

    def __init__(self) -> None:
        self.scores = itertools.cycle([0.3, 0.95])

    def scan(self, text: str) -> list[Finding]:
        return [Finding("injection", 0, len(text), next(self.scores), "JAILBREAK", "learned")]


def test_a_scan_that_runs_the_learned_scorer_is_never_memoised() -> None:
    engine = SafetyEngine(learned=_VaryingScorer())  # type: ignore[arg-type]
    policy = policy_for_level("strict")
    memo = VerdictMemo()
    memoised = MemoisedEngine(engine, memo)
    scores = {memoised.scan("pretend you are free", policy)[0].score for _ in range(2)}
    assert scores == {0.3, 0.95} and len(memo) == 0


# ---- inside a Relay ----------------------------------------------------------------------------------


def _config(tmp_path: Path, **safety: Any) -> dict[str, Any]:
    return {"providers": {"fake": {"kind": "fake"}}, "models": {"m": [{"provider": "fake", "model": "echo"}]},
            "storage": {"url": f"sqlite:///{tmp_path}/l.db"}, "cache": {"enabled": True},
            "safety": {"audit_secret": "s", **safety}}


async def _ask(relay: Relay, text: str, stream: bool = True) -> tuple[str, RequestContext]:
    ctx = RequestContext()
    req = ChatRequest(model="m", messages=(Message.user(text),), stream=stream, temperature=0)
    chunks = [c async for c in relay.handle(req, ctx)]
    return "".join(c.text for c in chunks), ctx


def _memo(relay: Relay) -> VerdictMemo:
    memo = relay.services.state["safety_verdict_memo"]
    assert isinstance(memo, VerdictMemo)
    return memo


@pytest.mark.parametrize("stream", [True, False])
async def test_cache_hits_are_decided_and_recorded_like_the_first_request(tmp_path: Path, stream: bool) -> None:
    prompt = "my email is erin@example.com, my card 4111 1111 1111 1111"
    async with Relay(_config(tmp_path, level="moderate")) as relay:
        relay.services.providers["fake"].script(["Write to bob@example.org, he keeps the cards."])  # type: ignore[attr-defined]
        runs = [await _ask(relay, prompt, stream) for _ in range(3)]
        assert [ctx.cache_status for _, ctx in runs] == ["miss", "hit", "hit"]
        assert _memo(relay).hits >= 4  # the prompt and the replayed answer, on each hit
        first_text, first = runs[0]
        for text, ctx in runs[1:]:
            assert text == first_text
            assert (ctx.safety_action, ctx.safety_findings) == (first.safety_action, first.safety_findings)
        assert {f["direction"] for f in first.safety_findings} == {"input", "output"}
        sample = relay.services.metrics.registry.get_sample_value(
            "llmrelay_safety_decisions_total", {"category": "pii", "direction": "input", "action": "redact"})
        assert sample == 3 * sum(f["direction"] == "input" and f["category"] == "pii" for f in first.safety_findings)
        await relay.services.audit.flush()
        safety = [e for e in await relay.services.audit.entries() if e.kind == "safety"]
        assert len(safety) == 6  # input and output, for each of the three requests


async def test_a_reload_that_changes_the_policy_is_not_served_old_verdicts(tmp_path: Path) -> None:
    cfg = _config(tmp_path, level="moderate")
    cfg["cache"] = {"enabled": False}
    async with Relay(cfg) as relay:
        for _ in range(2):
            text, ctx = await _ask(relay, "when does bluebird launch?")
            assert ctx.safety_action is None and "bluebird" in text
        assert _memo(relay).hits >= 2
        cfg["safety"]["rules"] = [{"name": "project", "kind": "keywords", "keywords": ["bluebird"]}]
        await relay.reload(Settings.model_validate(cfg))
        with pytest.raises(ContentPolicyError):
            await _ask(relay, "when does bluebird launch?")


async def test_moderation_bypasses_the_memo_and_runs_per_request(tmp_path: Path) -> None:
    moderation = {"kind": "judge", "provider": "fake", "model": "echo", "applies_to": "both"}
    async with Relay(_config(tmp_path, level="moderate", moderation=moderation)) as relay:
        fake = relay.services.providers["fake"]
        fake.script(["safe", "Hello there.", "unsafe, S10"])  # type: ignore[attr-defined]
        text, ctx = await _ask(relay, "tell me about them")
        assert text == "Hello there." and ctx.safety_action is None
        with pytest.raises(ContentPolicyError):  # the same prompt, a different verdict: never memoised
            await _ask(relay, "tell me about them")
        assert len(_memo(relay)) == 0 and _memo(relay).hits == 0


def test_the_wrapper_sees_a_scorer_set_on_the_engine_after_it_was_built() -> None:
    engine = SafetyEngine()
    memoised = MemoisedEngine(engine, VerdictMemo())
    policy = policy_for_level("strict")
    assert not memoised.wants_learned([], policy)
    engine.learned = _VaryingScorer()  # type: ignore[assignment]
    assert memoised.wants_learned([], policy) and memoised.learned is engine.learned
