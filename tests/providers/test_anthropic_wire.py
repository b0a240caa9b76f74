"""The Anthropic adapter against every recorded exchange with api.anthropic.com/v1/messages.

One test per interaction, found by glob over every folder of ``shared/data/wire`` (a new cassette
is covered without an edit). For each: the recorded response goes through the adapter's real HTTP
path (a mock transport replays status, headers and body) and must give the text, tool calls,
reasoning, finish reason and usage derived here from the raw recording; the request built by
``to_wire`` from an equivalent ChatRequest must equal the recorded body (see
``anthropic_recorded`` for what is deliberately not modelled).

Skipped with a reason: Bedrock's invoke endpoint (another wire: SigV4, no model in the body).
"""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from tests.conftest import WIRE
from tests.providers.anthropic_recorded import (
    Unmodelled,
    expected_from_json,
    expected_from_sse,
    expected_usage,
    to_chat_request,
)
from tests.providers.wire_util import Interaction, cassettes, load_cassette

from llmrelay.errors import InvalidRequestError, LLMRelayError
from llmrelay.providers.anthropic import AnthropicProvider
from llmrelay.providers.base import ProviderSettings
from llmrelay.streaming import Assembler
from llmrelay.transport import HTTPRequest, MockResponse, MockTransport
from llmrelay.types import ChatResult

FOLDERS = sorted(p.name for p in WIRE.iterdir() if p.is_dir()) if WIRE.is_dir() else []

# Error type in a recorded body -> the class it must map to.
ERROR_CLASSES = {"invalid_request_error": InvalidRequestError}
# The finish reason each stop_reason means (the table in the task, restated as the spec).
FINISH = {"end_turn": "stop", "stop_sequence": "stop", "pause_turn": "stop", "max_tokens": "length",
          "tool_use": "tool_calls", "refusal": "content_filter"}


def _messages_interactions() -> list[Interaction]:
    found = []
    for path in cassettes(WIRE, *FOLDERS):
        for it in load_cassette(path):
            if "api.anthropic.com" in it.uri and it.uri_path == "/v1/messages":
                found.append(it)
    return found


def _bedrock_interactions() -> list[Interaction]:
    return [
        it
        for path in cassettes(WIRE, *FOLDERS)
        for it in load_cassette(path)
        if "bedrock-runtime" in it.uri and "anthropic" in it.uri
    ]


INTERACTIONS = _messages_interactions()
IDS = [it.id for it in INTERACTIONS]


def test_recordings_are_found() -> None:
    if not WIRE.is_dir():
        pytest.skip(f"no recordings at {WIRE}")
    assert len(INTERACTIONS) >= 50
    assert any(it.is_stream for it in INTERACTIONS)
    assert any(it.status >= 400 for it in INTERACTIONS)


def _provider(it: Interaction) -> tuple[AnthropicProvider, MockTransport]:
    body: bytes | list[bytes]
    if it.response_text is not None:
        text = it.response_text.encode()
        # Split a stream at arbitrary points so the decoder meets events cut across reads.
        body = [text[i : i + 97] for i in range(0, len(text), 97)] if it.is_stream else text
    else:
        body = orjson.dumps(it.response_body)

    def handler(request: HTTPRequest) -> MockResponse:
        return MockResponse(it.status, it.response_headers, body)

    transport = MockTransport(handler)
    settings = ProviderSettings(name="anthropic", kind="anthropic", api_key="sk-test", base_url="https://api.anthropic.com")
    return AnthropicProvider(settings, transport), transport


async def _answer(provider: AnthropicProvider, it: Interaction) -> ChatResult:
    request = to_chat_request(it.request_body) if _modelled(it) else _minimal_request(it)
    if not it.is_stream:
        return await provider.complete(request)
    asm = Assembler()
    async for chunk in provider.stream(request):
        asm.add(chunk)
    return asm.result()


def _modelled(it: Interaction) -> bool:
    try:
        to_chat_request(it.request_body)
    except Unmodelled:
        return False
    return True


def _minimal_request(it: Interaction) -> Any:
    from llmrelay.types import ChatRequest, Message

    return ChatRequest(model=it.request_body["model"], messages=(Message.user("x"),), stream=it.is_stream)


@pytest.mark.parametrize("it", INTERACTIONS, ids=IDS)
async def test_response_is_parsed(it: Interaction) -> None:
    provider, _ = _provider(it)
    if it.status >= 400:
        with pytest.raises(LLMRelayError) as info:
            await _answer(provider, it)
        error = it.response_body["error"]
        assert type(info.value) is ERROR_CLASSES[error["type"]]
        assert error["message"] in str(info.value)
        assert info.value.upstream_status == it.status
        return
    expected = expected_from_sse(it.response_text or "") if it.is_stream else expected_from_json(it.response_body)
    assert expected.complete
    result = await _answer(provider, it)
    assert result.id == expected.id and result.model == expected.model
    assert result.text == expected.text
    assert result.reasoning == expected.reasoning
    assert [(c.id, c.name, json.loads(c.arguments)) for c in result.tool_calls] == expected.tool_calls
    assert result.finish_reason == FINISH[expected.stop_reason or ""]
    usage = result.usage
    got = {k: getattr(usage, k) for k in expected_usage(expected.usage)}
    assert got == expected_usage(expected.usage)


@pytest.mark.parametrize("it", INTERACTIONS, ids=IDS)
def test_request_has_the_recorded_shape(it: Interaction) -> None:
    recorded = it.request_body
    try:
        request = to_chat_request(recorded)
    except Unmodelled as reason:
        pytest.skip(f"not modelled on purpose: {reason}")
    provider, _ = _provider(it)
    http = provider.to_wire(request, stream=bool(recorded.get("stream")))
    assert http.method == "POST" and http.url == "https://api.anthropic.com/v1/messages"
    assert http.headers["x-api-key"] == "sk-test"
    assert http.headers["anthropic-version"] == "2023-06-01"
    assert http.body is not None
    assert orjson.loads(http.body) == recorded


@pytest.mark.parametrize("it", _bedrock_interactions(), ids=lambda it: it.id)
def test_bedrock_recordings_are_out_of_scope(it: Interaction) -> None:
    pytest.skip("Bedrock invoke is another wire (SigV4 auth, model in the URL); not this adapter's job")
