"""The streaming output filter: matches split across chunks, mid-stream redaction and blocks."""

from __future__ import annotations

import pytest

from llmrelay.config import SafetyConfig, SafetyRule
from llmrelay.safety.engine import Redactor, SafetyEngine
from llmrelay.safety.policy import Policy, policy_for_level, resolve_policy
from llmrelay.safety.stream_filter import StreamFilter

ANSWER = "Sure. Write to alice.smith@example.org and quote card 4539 1488 0343 6467 in the subject line, thanks!"


def _run(filt: StreamFilter, pieces: list[str]) -> tuple[list[str], str]:
    released = [filt.feed(p) for p in pieces]
    released.append(filt.close())
    return released, "".join(released)


@pytest.mark.parametrize("size", [1, 3, 7, 16, 200])
def test_split_matches_are_redacted_whatever_the_chunking(engine: SafetyEngine, size: int) -> None:
    filt = StreamFilter(engine, policy_for_level("moderate"), window=48)
    pieces = [ANSWER[i : i + size] for i in range(0, len(ANSWER), size)]
    _, out = _run(filt, pieces)
    assert out == "Sure. Write to [EMAIL_1] and quote card [CREDIT_CARD_1] in the subject line, thanks!"
    assert {f.type for f in filt.findings} == {"EMAIL", "CREDIT_CARD"}


def test_redaction_streams_and_holds_back_only_the_window(engine: SafetyEngine) -> None:
    filt = StreamFilter(engine, policy_for_level("moderate"), window=32)
    text = "word " * 40 + "mail bob@example.com " + "word " * 40
    pieces = [text[i : i + 10] for i in range(0, len(text), 10)]
    released, out = _run(filt, pieces)
    # Text was released long before the end, and never more than the window was held.
    first = next(i for i, r in enumerate(released) if r)
    assert first < 6
    held_max = max(len("".join(pieces[: i + 1])) - len("".join(released[: i + 1])) for i in range(len(pieces)))
    assert held_max <= 32 + 10 + len("bob@example.com")
    assert "[EMAIL_1]" in out and "bob@" not in out


def test_block_mid_stream_stops_release(engine: SafetyEngine) -> None:
    filt = StreamFilter(engine, policy_for_level("strict"), window=32)
    secret = "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"
    text = "Here is the config you asked for. " * 3 + "token: " + secret + " and more text after it."
    _released, out = _run(filt, [text[i : i + 5] for i in range(0, len(text), 5)])
    assert filt.blocked and filt.action == "block"
    assert "ghp_" not in out
    assert out and text.startswith(out)  # what went out before the block was clean and in order


def test_restore_puts_prompt_values_back_for_the_user(engine: SafetyEngine) -> None:
    policy = resolve_policy(SafetyConfig(level="moderate", restore_redacted=True))
    redactor = Redactor()
    prompt = engine.inspect("email carol@example.net please", policy, redactor=redactor)
    assert prompt.text == "email [EMAIL_1] please"
    filt = StreamFilter(engine, policy, redactor=redactor, window=16)
    _, out = _run(filt, ["I will write to [EMA", "IL_1] today."])
    assert out == "I will write to carol@example.net today."


def test_custom_rule_split_across_chunks(engine: SafetyEngine) -> None:
    p = resolve_policy(SafetyConfig(level="moderate", rules=[SafetyRule(name="codename", pattern=r"project\s+bluebird", action="block")]))
    assert isinstance(p, Policy)
    filt = StreamFilter(engine, p, window=24)
    _run(filt, ["the plan for proj", "ect blue", "bird is ready"])
    assert filt.blocked


def test_low_level_flags_but_releases_everything(engine: SafetyEngine) -> None:
    filt = StreamFilter(engine, policy_for_level("low"), window=16)
    _, out = _run(filt, ["mail dave@", "example.com now"])
    assert out == "mail dave@example.com now"
    assert filt.action == "flag"
