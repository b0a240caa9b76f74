"""The core works on a minimal install (no extras): a relay over the fake provider."""

from __future__ import annotations

import pytest

from llmrelay import Message, Relay
from llmrelay.errors import ModelNotFoundError, RateLimitError
from llmrelay.testing import FakeProvider

CONFIG = {"providers": {"fake": {"kind": "fake"}}, "models": {"m": [{"provider": "fake", "model": "echo"}]}}


async def test_chat_and_stream_agree() -> None:
    async with Relay(CONFIG) as relay:
        fake = relay.services.providers["fake"]
        assert isinstance(fake, FakeProvider)
        fake.script(["Hello there!", ["Hello", " there!"]])
        whole = await relay.chat(model="m", messages=[Message.user("hi")])
        parts = [c async for c in relay.stream(model="m", messages=[Message.user("hi")])]
    assert whole.text == "".join(c.text for c in parts) == "Hello there!"
    assert whole.provider == "fake"
    assert parts[-1].finish_reason == "stop"


async def test_retryable_error_is_retried_and_unknown_model_refused() -> None:
    async with Relay(CONFIG) as relay:
        relay.services.providers["fake"].script([RateLimitError("slow down"), "ok"])
        assert (await relay.chat(model="m", messages=[Message.user("x")])).text == "ok"
        with pytest.raises(ModelNotFoundError):
            await relay.chat(model="nope", messages=[Message.user("x")])


def test_sync_facade() -> None:
    with Relay(CONFIG).sync() as relay:
        assert relay.chat(model="m", messages=[Message.user("ping")]).text == "You said: ping"
        assert "".join(c.text for c in relay.stream(model="m", messages=[Message.user("a b")])) == "You said: a b"
