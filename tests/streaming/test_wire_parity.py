"""Streamed and non-streamed answers agree, for every recorded streaming exchange (issue #8).

Generated from ``shared/data/wire``: one test per recorded stream, so new recordings are covered.
For each, the provider's own stream decoder reads the recorded body and ``streaming.Assembler``
folds the chunks into the answer. That answer is then served through both gateway edges, both
ways: the non-streamed body encoder with the assembled result, and the SSE stream encoder with the
decoded chunks, as the gateway sends them. The official SDKs are the clients (over an in-process
``httpx.MockTransport``, so their whole parsing path runs): ``openai``'s ``chat.completions.create``
and its streaming helper (``ChatCompletionStreamState``); ``anthropic``'s ``messages.create`` and
``messages.stream`` (``accumulate_event``). What the SDK rebuilds from the stream must equal what
it reads from the non-streamed body (text, reasoning, tool calls with arguments, finish/stop
reason, usage), and both must equal the assembled answer. A recorded stream that ends in an error
reaches both SDKs as the same error, streamed or not.

Where a recording has a non-streamed twin (the same request without ``stream``), that twin is a
separate real call, so its wording differs; the test checks what the same request must give twice:
the finish reason, the tools called, whether there is text, and counted usage.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import anthropic
import httpx
import openai
import pytest
from tests.conftest import WIRE
from tests.providers.wire_util import Interaction, body_lines, cassettes, load_cassette

from llmrelay.errors import LLMRelayError
from llmrelay.providers.anthropic import AnthropicProvider
from llmrelay.providers.base import HTTPProvider, ProviderSettings
from llmrelay.providers.gemini import GeminiProvider
from llmrelay.providers.openai import OpenAIProvider
from llmrelay.providers.presets import PRESETS
from llmrelay.server import anthropic_codec, openai_codec
from llmrelay.streaming import Assembler
from llmrelay.types import ChatResult, Chunk

MODEL, REQUEST_ID, COST = "gw-model", "req_parity0001", 0.0012345


def _openai_compatible(preset: str) -> Callable[[Interaction], HTTPProvider]:
    def make(it: Interaction) -> HTTPProvider:
        base = it.uri.split("#")[0].removesuffix("/chat/completions")
        settings = ProviderSettings(name=preset, kind=preset, base_url=base, api_key="k",
                                    options=dict(PRESETS[preset].options))
        return OpenAIProvider(settings)
    return make


def _anthropic(it: Interaction) -> HTTPProvider:
    return AnthropicProvider(ProviderSettings(name="a", kind="anthropic", base_url="https://api.anthropic.com", api_key="k"))


def _gemini(it: Interaction) -> HTTPProvider:
    prefix = it.uri_path.rsplit("/", 1)[0]
    base = it.uri.split("/v1")[0]
    return GeminiProvider(ProviderSettings(name="g", kind="gemini", base_url=base, api_key="k",
                                           options={"path_prefix": prefix}))


# Recording folder -> the adapter that speaks its protocol.
ADAPTERS: dict[str, Callable[[Interaction], HTTPProvider]] = {
    **{f: _openai_compatible(f) for f in ("openai", "groq", "mistral", "deepseek", "openrouter")},
    "anthropic": _anthropic,
    "google": _gemini,
}


def _twin_key(it: Interaction) -> tuple[str, str, str]:
    body = {k: v for k, v in (it.request_body or {}).items() if k not in ("stream", "stream_options")}
    return (it.path.parent.name, it.uri_path.replace("streamGenerateContent", "generateContent"),
            json.dumps(body, sort_keys=True))


def _recorded() -> tuple[list[Any], dict[tuple[str, str, str], Interaction]]:
    streams: list[Any] = []
    twins: dict[tuple[str, str, str], Interaction] = {}
    for path in cassettes(WIRE, *ADAPTERS):
        for it in load_cassette(path):
            if it.is_stream and it.status == 200:
                streams.append(pytest.param(it, id=it.id))
            elif it.status == 200 and isinstance(it.response_body, dict):
                twins.setdefault(_twin_key(it), it)
    return streams, twins


STREAMS, TWINS = _recorded()


def test_the_recordings_cover_every_streaming_adapter() -> None:
    if not WIRE.is_dir():
        pytest.skip(f"no recorded exchanges at {WIRE}")
    folders = {p.values[0].path.parent.name for p in STREAMS}
    assert {"openai", "anthropic", "google"} <= folders, folders


def _decode(it: Interaction) -> tuple[list[Chunk], LLMRelayError | None]:
    decoder = ADAPTERS[it.path.parent.name](it).stream_decoder()
    chunks: list[Chunk] = []
    try:
        for line in body_lines(it.response_text or ""):
            chunks.extend(decoder.feed(line))
        chunks.extend(decoder.close())
    except LLMRelayError as exc:
        return chunks, exc
    return chunks, None


def _assemble(chunks: list[Chunk]) -> ChatResult:
    asm = Assembler()
    for c in chunks:
        asm.add(c)
    return asm.result()


# ---------------------------------------------------------------------------- the two edges


def _render_openai(chunks: list[Chunk], error: LLMRelayError | None, stream: bool) -> tuple[int, bytes, str]:
    """What the OpenAI edge answers: (status, body, content type)."""
    if not stream:
        if error is not None:
            return error.status, json.dumps(error.to_openai()).encode(), "application/json"
        return 200, openai_codec.encode_result(_assemble(chunks), MODEL, REQUEST_ID, COST), "application/json"
    enc = openai_codec.StreamEncoder(MODEL, REQUEST_ID, True)
    body = b"".join(enc.chunk(c) for c in chunks)
    body += openai_codec.error_event(error.to_openai()) if error is not None else enc.end(COST)
    return 200, body, "text/event-stream"


def _render_anthropic(chunks: list[Chunk], error: LLMRelayError | None, stream: bool) -> tuple[int, bytes, str]:
    """What the Anthropic edge answers: (status, body, content type)."""
    if not stream:
        if error is not None:
            return error.status, json.dumps(error.to_anthropic()).encode(), "application/json"
        return 200, anthropic_codec.encode_result(_assemble(chunks), MODEL, REQUEST_ID, COST), "application/json"
    enc = anthropic_codec.StreamEncoder(MODEL, REQUEST_ID)
    out = b"".join(enc.chunk(c) for c in chunks)
    out += anthropic_codec.error_event(error.to_anthropic()) if error is not None else enc.end(COST)
    return 200, out, "text/event-stream"


def _sdk_http(sdk: Any) -> Any:
    """The HTTP package an SDK is built on (httpx2 in recent releases, httpx before)."""
    return getattr(sdk._base_client, "httpx2", None) or httpx


def _openai_client(chunks: list[Chunk], error: LLMRelayError | None) -> openai.OpenAI:
    http_pkg = _sdk_http(openai)

    def handle(request: Any) -> Any:
        status, body, ctype = _render_openai(chunks, error, bool(json.loads(request.content).get("stream")))
        return http_pkg.Response(status, content=body, headers={"content-type": ctype})

    http = http_pkg.Client(transport=http_pkg.MockTransport(handle))
    return openai.OpenAI(api_key="k", base_url="http://gateway.test/v1", http_client=http, max_retries=0)


def _anthropic_client(chunks: list[Chunk], error: LLMRelayError | None) -> anthropic.Anthropic:
    http_pkg = _sdk_http(anthropic)

    def handle(request: Any) -> Any:
        status, body, ctype = _render_anthropic(chunks, error, bool(json.loads(request.content).get("stream")))
        return http_pkg.Response(status, content=body, headers={"content-type": ctype})

    http = http_pkg.Client(transport=http_pkg.MockTransport(handle))
    return anthropic.Anthropic(api_key="k", base_url="http://gateway.test", http_client=http, max_retries=0)


MESSAGES: Any = [{"role": "user", "content": "hi"}]


def _openai_view(completion: Any) -> dict[str, Any]:
    """What an OpenAI SDK user reads from a completion (streamed or not)."""
    msg = completion.choices[0].message
    extra = msg.model_extra or {}
    return {
        "text": msg.content or "",
        "reasoning": extra.get("reasoning_content") or "",
        "calls": [(c.id, c.function.name, c.function.arguments) for c in msg.tool_calls or ()],
        "finish": completion.choices[0].finish_reason,
        "usage": _openai_usage(completion.usage),
    }


def _openai_usage(u: Any) -> tuple[Any, ...]:
    cached = u.prompt_tokens_details.cached_tokens if u.prompt_tokens_details else None
    reasoning = u.completion_tokens_details.reasoning_tokens if u.completion_tokens_details else None
    return u.prompt_tokens, u.completion_tokens, u.total_tokens, cached, reasoning, (u.model_extra or {}).get("cost")


def _anthropic_view(message: Any) -> dict[str, Any]:
    """What an Anthropic SDK user reads from a message (streamed or not)."""
    blocks = message.content
    u = message.usage
    return {
        "text": "".join(b.text for b in blocks if b.type == "text"),
        "thinking": "".join(b.thinking for b in blocks if b.type == "thinking"),
        "signature": [b.signature for b in blocks if b.type == "thinking"],
        "calls": [(b.id, b.name, b.input) for b in blocks if b.type == "tool_use"],
        "stop": message.stop_reason,
        "usage": (u.input_tokens, u.output_tokens, u.cache_read_input_tokens or 0, u.cache_creation_input_tokens or 0),
    }


# ---------------------------------------------------------------------------- the tests


@pytest.mark.parametrize("it", STREAMS)
def test_openai_edge_streamed_equals_non_streamed(it: Interaction) -> None:
    chunks, error = _decode(it)
    client = _openai_client(chunks, error)
    if error is not None:
        _same_openai_error(client, error)
        return
    plain = client.chat.completions.create(model=MODEL, messages=MESSAGES)
    with client.chat.completions.stream(model=MODEL, messages=MESSAGES,
                                        stream_options={"include_usage": True}) as stream:
        for _ in stream:
            pass
        streamed = stream.get_final_completion()
    assert _openai_view(streamed) == _openai_view(plain)
    result = _assemble(chunks)
    u = result.usage
    assert _openai_view(plain) == {
        "text": result.text,
        "reasoning": result.reasoning,
        "calls": [(c.id, c.name, c.arguments) for c in result.tool_calls],
        "finish": "tool_calls" if result.tool_calls else result.finish_reason,
        "usage": (u.input_tokens, u.output_tokens, u.total_tokens, u.cache_read_tokens, u.reasoning_tokens, round(COST, 10)),
    }


_STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "content_filter": "refusal"}


@pytest.mark.parametrize("it", STREAMS)
def test_anthropic_edge_streamed_equals_non_streamed(it: Interaction) -> None:
    chunks, error = _decode(it)
    client = _anthropic_client(chunks, error)
    if error is not None:
        _same_anthropic_error(client, error)
        return
    plain = client.messages.create(model=MODEL, max_tokens=100, messages=MESSAGES)
    with client.messages.stream(model=MODEL, max_tokens=100, messages=MESSAGES) as stream:
        for _ in stream:
            pass
        streamed = stream.get_final_message()
    assert _anthropic_view(streamed) == _anthropic_view(plain)
    result = _assemble(chunks)
    view = _anthropic_view(plain)
    assert (view["text"], view["thinking"]) == (result.text, result.reasoning)
    assert view["calls"] == [(c.id, c.name, json.loads(c.arguments or "{}")) for c in result.tool_calls]
    assert view["stop"] == ("tool_use" if result.tool_calls else _STOP.get(result.finish_reason, view["stop"]))
    u = result.usage
    assert view["usage"] == (u.uncached_input_tokens, u.output_tokens, u.cache_read_tokens, u.cache_write_tokens)


def _same_openai_error(client: openai.OpenAI, error: LLMRelayError) -> None:
    with pytest.raises(openai.APIError) as plain:
        client.chat.completions.create(model=MODEL, messages=MESSAGES)
    with pytest.raises(openai.APIError) as streamed:
        for _ in client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True):
            pass
    sent = error.to_openai()["error"]
    for exc in (plain.value, streamed.value):
        assert sent["message"] in exc.message
        assert (exc.code, exc.type) == (sent["code"], sent["type"])


def _same_anthropic_error(client: anthropic.Anthropic, error: LLMRelayError) -> None:
    with pytest.raises(anthropic.APIStatusError) as plain:
        client.messages.create(model=MODEL, max_tokens=100, messages=MESSAGES)
    with pytest.raises(anthropic.APIStatusError) as streamed:
        for _ in client.messages.create(model=MODEL, max_tokens=100, messages=MESSAGES, stream=True):
            pass
    assert streamed.value.body == plain.value.body == error.to_anthropic()


@pytest.mark.parametrize("it", [p for p in STREAMS if _twin_key(p.values[0]) in TWINS])
def test_a_non_streamed_twin_gives_the_same_kind_of_answer(it: Interaction) -> None:
    chunks, error = _decode(it)
    assert error is None
    twin = TWINS[_twin_key(it)]
    plain = ADAPTERS[twin.path.parent.name](twin).from_wire(twin.response_body)
    streamed = _assemble(chunks)
    assert streamed.finish_reason == plain.finish_reason
    assert [c.name for c in streamed.tool_calls] == [c.name for c in plain.tool_calls]
    assert bool(streamed.text) == bool(plain.text)
    # Token counts differ between two real calls (server-side tools, caching), but both are counted.
    assert streamed.usage.input_tokens > 0 and plain.usage.input_tokens > 0
