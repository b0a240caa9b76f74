"""The Ollama adapter (native ``/api/chat``) against the official ``ollama`` SDK and Ollama's API docs.

There are no recordings of the native API (the ollama/ cassettes use the OpenAI-compatible /v1
endpoint), so fixtures come from two sources, named on each:
- requests: the ``ollama`` SDK (0.6) itself builds the body for the same conversation, captured by an
  httpx mock transport; ``to_wire`` must produce exactly that JSON;
- answers: the response examples of Ollama's API reference (docs/api.md, "Generate a chat
  completion": streaming lines, final ``done`` line with counts, tool calls, thinking), each
  validated by the SDK's own ``ChatResponse`` model, and the expected values read through the SDK.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import ollama
import pytest

from llmrelay.errors import (
    InvalidRequestError,
    ModelNotFoundError,
    ProviderError,
    ProviderResponseError,
    StreamInterruptedError,
)
from llmrelay.providers.base import ProviderSettings
from llmrelay.providers.ollama import OllamaProvider
from llmrelay.streaming import Assembler
from llmrelay.transport import MockResponse, MockTransport
from llmrelay.types import (
    ChatRequest,
    EmbeddingRequest,
    ImagePart,
    Message,
    Reasoning,
    TextPart,
    Tool,
    ToolCall,
)

PNG = b"\x89PNG\r\n\x1a\nfake-image-bytes"
WEATHER_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string", "description": "The city"}},
    "required": ["city"],
}


def provider(handler: Any) -> OllamaProvider:
    return OllamaProvider(ProviderSettings(name="local", kind="ollama"), MockTransport(handler))


async def sdk_body(**kwargs: Any) -> dict[str, Any]:
    """The JSON the official SDK sends for ``AsyncClient.chat(**kwargs)``."""
    sent: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        done = {"model": "m", "created_at": "2024-01-01T00:00:00Z", "message": {"role": "assistant", "content": ""},
                "done": True, "done_reason": "stop"}
        return httpx.Response(200, content=json.dumps(done).encode() + b"\n")

    client = ollama.AsyncClient(host="http://127.0.0.1:11434", transport=httpx.MockTransport(handler))
    result = await client.chat(**kwargs)
    if kwargs.get("stream"):
        async for _ in result:  # type: ignore[union-attr]
            pass
    return sent[0]


async def test_simple_request_matches_the_sdk() -> None:
    request = ChatRequest(
        model="llama3.2",
        messages=(Message.system("Be brief."), Message.user("Why is the sky blue?")),
        temperature=0.2, top_p=0.9, top_k=40, max_tokens=64, stop=("\n\n",), seed=7,
    )
    want = await sdk_body(
        model="llama3.2",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Why is the sky blue?"}],
        options={"temperature": 0.2, "top_p": 0.9, "top_k": 40, "num_predict": 64, "stop": ["\n\n"], "seed": 7},
        stream=False,
    )
    http = provider(lambda r: MockResponse()).to_wire(request, stream=False)
    assert http.url == "http://127.0.0.1:11434/api/chat"
    got = json.loads(http.body or b"")
    want.pop("tools", None) if want.get("tools") == [] else None  # the SDK sends an empty list
    assert got == want


async def test_tools_images_format_think_and_keep_alive_match_the_sdk() -> None:
    b64 = base64.b64encode(PNG).decode()
    request = ChatRequest(
        model="qwen3",
        messages=(
            Message.user((TextPart("What is in this picture, and the weather in Paris?"), ImagePart(data=b64, media_type="image/png"))),
            Message(role="assistant", content="", reasoning="Need the weather tool.",
                    tool_calls=(ToolCall("c1", "get_weather", '{"city": "Paris"}'),)),
            Message.tool("c1", "22 degrees, sunny"),
        ),
        tools=(Tool("get_weather", "Current weather", WEATHER_SCHEMA),),
        response_format={"type": "json_schema", "json_schema": {"name": "a", "schema": WEATHER_SCHEMA}},
        reasoning=Reasoning(),
        stream=True,
        extra={"keep_alive": "5m", "options": {"num_ctx": 8192}},
    )
    want = await sdk_body(
        model="qwen3",
        messages=[
            {"role": "user", "content": "What is in this picture, and the weather in Paris?", "images": [PNG]},
            {"role": "assistant", "content": "", "thinking": "Need the weather tool.",
             "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
            {"role": "tool", "content": "22 degrees, sunny", "tool_name": "get_weather"},
        ],
        tools=[{"type": "function", "function": {"name": "get_weather", "description": "Current weather",
                                                 "parameters": WEATHER_SCHEMA}}],
        format=WEATHER_SCHEMA,
        think=True,
        options={"num_ctx": 8192},
        keep_alive="5m",
        stream=True,
    )
    http = provider(lambda r: MockResponse()).to_wire(request, stream=True)
    assert json.loads(http.body or b"") == want


@pytest.mark.parametrize(
    ("model", "reasoning", "think"),
    [
        ("qwen3", Reasoning(enabled=False), False),
        ("gpt-oss:20b", Reasoning(effort="high"), "high"),
        ("gpt-oss:20b", Reasoning(effort="minimal"), "low"),
        ("deepseek-r1", Reasoning(effort="high"), True),
    ],
)
def test_think_levels_only_for_models_that_take_them(model: str, reasoning: Reasoning, think: Any) -> None:
    req = ChatRequest(model=model, messages=(Message.user("x"),), reasoning=reasoning)
    body = json.loads(provider(lambda r: MockResponse()).to_wire(req, stream=False).body or b"")
    assert body["think"] == think


def test_json_mode_and_image_urls() -> None:
    p = provider(lambda r: MockResponse())
    req = ChatRequest(model="m", messages=(Message.user("x"),), response_format={"type": "json_object"})
    assert json.loads(p.to_wire(req, stream=False).body or b"")["format"] == "json"
    data_url = ChatRequest(model="m", messages=(Message.user((ImagePart(url="data:image/png;base64,QUJD"),)),))
    assert json.loads(p.to_wire(data_url, stream=False).body or b"")["messages"][0]["images"] == ["QUJD"]
    remote = ChatRequest(model="m", messages=(Message.user((ImagePart(url="https://x/cat.png"),)),))
    with pytest.raises(InvalidRequestError, match="base64"):
        p.to_wire(remote, stream=False)


# ----------------------------------------------------------------------------------- answers
# From Ollama's docs/api.md, "Chat request (streaming)" / "(No streaming)" / "(With tools)".

STREAM_TEXT = [
    {"model": "llama3.2", "created_at": "2023-08-04T08:52:19.385406455-07:00",
     "message": {"role": "assistant", "content": "The", "images": None}, "done": False},
    {"model": "llama3.2", "created_at": "2023-08-04T08:52:19.405406455-07:00",
     "message": {"role": "assistant", "content": " sky is blue."}, "done": False},
    {"model": "llama3.2", "created_at": "2023-08-04T19:22:45.499127Z", "message": {"role": "assistant", "content": ""},
     "done": True, "done_reason": "stop", "total_duration": 4883583458, "load_duration": 1334875,
     "prompt_eval_count": 26, "prompt_eval_duration": 342546000, "eval_count": 282, "eval_duration": 4535599000},
]
STREAM_THINKING_LENGTH = [
    {"model": "qwen3", "created_at": "2025-05-29T09:35:56.836222Z",
     "message": {"role": "assistant", "content": "", "thinking": "Let me count."}, "done": False},
    {"model": "qwen3", "created_at": "2025-05-29T09:35:56.936222Z",
     "message": {"role": "assistant", "content": "1, 2, 3"}, "done": False},
    {"model": "qwen3", "created_at": "2025-05-29T09:35:57.036222Z", "message": {"role": "assistant", "content": ""},
     "done": True, "done_reason": "length", "prompt_eval_count": 12, "eval_count": 10},
]
TOOLS_ANSWER = {
    "model": "llama3.2", "created_at": "2024-07-22T20:33:28.123648Z",
    "message": {"role": "assistant", "content": "", "tool_calls": [
        {"function": {"name": "get_current_weather", "arguments": {"format": "celsius", "location": "Paris, FR"}}},
        {"function": {"name": "get_current_weather", "arguments": {"format": "celsius", "location": "Lyon, FR"}}},
    ]},
    "done_reason": "stop", "done": True, "total_duration": 885095291, "load_duration": 3753500,
    "prompt_eval_count": 122, "prompt_eval_duration": 328493000, "eval_count": 33, "eval_duration": 552222000,
}


def sdk_expectation(lines: list[dict[str, Any]]) -> dict[str, Any]:
    parsed = [ollama.ChatResponse.model_validate(x) for x in lines]  # the fixture has the SDK's shape
    last = parsed[-1]
    calls = [(c.function.name, dict(c.function.arguments)) for p in parsed for c in p.message.tool_calls or ()]
    reason = {"stop": "stop", "length": "length"}[last.done_reason or "stop"]
    return {
        "text": "".join(p.message.content or "" for p in parsed),
        "reasoning": "".join(p.message.thinking or "" for p in parsed),
        "calls": calls,
        "finish": "tool_calls" if calls and reason == "stop" else reason,
        "usage": (last.prompt_eval_count or 0, last.eval_count or 0),
    }


def ndjson(lines: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(x).encode() + b"\n" for x in lines)


@pytest.mark.parametrize("lines", [STREAM_TEXT, STREAM_THINKING_LENGTH, [TOOLS_ANSWER]], ids=["text", "thinking", "tools"])
async def test_streamed_and_whole_answers_parse_like_the_sdk(lines: list[dict[str, Any]]) -> None:
    want = sdk_expectation(lines)
    p = provider(lambda r: MockResponse(200, {"content-type": "application/x-ndjson"}, ndjson(lines)))
    request = ChatRequest(model="m", messages=(Message.user("hi"),))
    asm = Assembler()
    async for chunk in p.stream(request):
        asm.add(chunk)
    # A non-streamed answer is the stream's content in one object (docs: "No streaming").
    whole = {**lines[-1], "message": {
        "role": "assistant",
        "content": want["text"],
        "thinking": want["reasoning"] or None,
        "tool_calls": [c for x in lines for c in (x["message"].get("tool_calls") or ())] or None,
    }}
    p2 = provider(lambda r: MockResponse(200, {}, json.dumps(whole).encode()))
    for result in (asm.result(), await p2.complete(request)):
        assert result.text == want["text"]
        assert result.reasoning == want["reasoning"]
        assert [(c.name, json.loads(c.arguments)) for c in result.tool_calls] == want["calls"]
        assert len({c.id for c in result.tool_calls}) == len(result.tool_calls)
        assert result.finish_reason == want["finish"]
        assert (result.usage.input_tokens, result.usage.output_tokens) == want["usage"]


# ------------------------------------------------------------------------------------ errors


async def test_missing_model_is_model_not_found() -> None:
    body = b'{"error":"model \\"llama9\\" not found, try pulling it first"}'
    p = provider(lambda r: MockResponse(404, {"content-type": "application/json"}, body))
    with pytest.raises(ModelNotFoundError, match="ollama pull") as info:
        await p.complete(ChatRequest(model="llama9", messages=(Message.user("x"),)))
    assert info.value.provider == "local" and info.value.upstream_status == 404


async def test_error_line_inside_the_stream() -> None:
    lines = ndjson(STREAM_TEXT[:1]) + b'{"error":"an error was encountered while running the model"}\n'
    p = provider(lambda r: MockResponse(200, {}, lines))
    with pytest.raises(ProviderError, match="while running the model") as info:
        _ = [c async for c in p.stream(ChatRequest(model="m", messages=(Message.user("x"),)))]
    assert info.value.retryable


@pytest.mark.parametrize(
    ("response", "error"),
    [
        (MockResponse(502, {"content-type": "text/html"}, b"<html><body>Bad Gateway</body></html>"), ProviderError),
        (MockResponse(200, {}, b"{not json"), ProviderResponseError),
        (MockResponse(400, {}, b'{"error":"registry.ollama.ai/library/gemma does not support tools"}'), InvalidRequestError),
    ],
    ids=["html", "malformed", "no-tools"],
)
async def test_bad_answers(response: MockResponse, error: type[Exception]) -> None:
    with pytest.raises(error):
        await provider(lambda r: response).complete(ChatRequest(model="m", messages=(Message.user("x"),)))


@pytest.mark.parametrize(
    "body",
    [b"", ndjson(STREAM_TEXT[:2]), [ndjson(STREAM_TEXT[:1]), StreamInterruptedError("the upstream closed the connection mid-answer")], b"{oops\n"],
    ids=["empty", "no-done-line", "dropped", "malformed-line"],
)
async def test_cut_streams_raise_stream_interrupted(body: Any) -> None:
    p = provider(lambda r: MockResponse(200, {}, body))
    with pytest.raises(StreamInterruptedError) as info:
        _ = [c async for c in p.stream(ChatRequest(model="m", messages=(Message.user("x"),)))]
    assert info.value.retryable and info.value.provider == "local"


# ----------------------------------------------------------------------------- other endpoints


async def test_tags_embed_and_version() -> None:
    # Shapes from docs/api.md: "List Local Models", "Generate Embeddings", "Version".
    answers = {
        "/api/tags": {"models": [{"name": "llama3.2:latest", "model": "llama3.2:latest", "size": 2019393189,
                                  "details": {"family": "llama", "parameter_size": "3.2B"}}]},
        "/api/embed": {"model": "all-minilm", "embeddings": [[0.01, -0.02], [0.03, 0.04]], "prompt_eval_count": 8},
        "/api/version": {"version": "0.5.1"},
    }
    p = provider(lambda r: MockResponse(200, {}, json.dumps(answers[r.url.removeprefix("http://127.0.0.1:11434")]).encode()))
    assert [m.id for m in await p.list_models()] == ["llama3.2:latest"]
    emb = await p.embed(EmbeddingRequest(model="all-minilm", input=("a", "b")))
    assert emb.vectors == ((0.01, -0.02), (0.03, 0.04)) and emb.usage.input_tokens == 8
    assert json.loads(p.transport.requests[1].body or b"") == {"model": "all-minilm", "input": ["a", "b"]}  # type: ignore[attr-defined]
    health = await p.health()
    assert health.ok and "0.5.1" in health.detail
    down = provider(lambda r: MockResponse(503, {}, b'{"error":"server busy"}'))
    assert not (await down.health()).ok
