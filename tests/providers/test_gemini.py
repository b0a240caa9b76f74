"""Gemini adapter behaviour the recordings do not cover: errors, cut streams, request options,
signatures, the other endpoints.

Error bodies follow Google's documented format (ai.google.dev/gemini-api/docs/troubleshooting and
the google.rpc Status / RetryInfo / ErrorInfo protos): ``{"error": {"code", "message", "status",
"details": [{"@type": ...}]}}``; the messages are those the API returns for each case. Answer
shapes for list/embed follow the API reference (models.list, models.batchEmbedContents).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from llmrelay.errors import (
    AuthenticationError,
    ContextWindowExceededError,
    InvalidRequestError,
    LLMRelayError,
    ModelNotFoundError,
    PermissionDeniedError,
    ProviderError,
    ProviderResponseError,
    ProviderUnavailableError,
    RateLimitError,
    StreamInterruptedError,
)
from llmrelay.providers.base import ProviderSettings
from llmrelay.providers.gemini import GeminiProvider
from llmrelay.providers.gemini_wire import DUMMY_SIGNATURE, openapi_schema
from llmrelay.streaming import Assembler
from llmrelay.transport import MockResponse, MockTransport
from llmrelay.types import ChatRequest, EmbeddingRequest, ImagePart, Message, Reasoning, Tool, ToolCall

BASE = "https://generativelanguage.googleapis.com"


def provider(handler: Any, **options: Any) -> GeminiProvider:
    settings = ProviderSettings(name="gem", kind="gemini", api_key="key", options=options)
    return GeminiProvider(settings, MockTransport(handler))


def body_of(req: ChatRequest, **options: Any) -> dict[str, Any]:
    return json.loads(provider(lambda r: MockResponse(), **options).to_wire(req, stream=False).body or b"")


def google_error(code: int, status: str, message: str, *details: dict[str, Any]) -> bytes:
    return json.dumps({"error": {"code": code, "message": message, "status": status, "details": list(details)}}).encode()


REQ = ChatRequest(model="gemini-2.5-flash", messages=(Message.user("hi"),))

# ------------------------------------------------------------------------------------ errors

ERRORS = [
    (400, google_error(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.",
                       {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
                        "domain": "googleapis.com"}), AuthenticationError),
    (400, google_error(400, "INVALID_ARGUMENT",
                       "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576)."),
     ContextWindowExceededError),
    (400, google_error(400, "INVALID_ARGUMENT", "Invalid JSON payload received. Unknown name \"foo\"."),
     InvalidRequestError),
    (403, google_error(403, "PERMISSION_DENIED", "The caller does not have permission"), PermissionDeniedError),
    (401, google_error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials."), AuthenticationError),
    (404, google_error(404, "NOT_FOUND", "models/gemini-9 is not found for API version v1beta"), ModelNotFoundError),
    (500, google_error(500, "INTERNAL", "An internal error has occurred."), ProviderError),
    (503, google_error(503, "UNAVAILABLE", "The model is overloaded. Please try again later."), ProviderUnavailableError),
    (502, b"<!DOCTYPE html><html><body>502 Bad Gateway</body></html>", ProviderUnavailableError),
]


@pytest.mark.parametrize(("status", "body", "error"), ERRORS, ids=[e[2].__name__ + str(i) for i, e in enumerate(ERRORS)])
async def test_error_bodies_map_to_classes(status: int, body: bytes, error: type[LLMRelayError]) -> None:
    p = provider(lambda r: MockResponse(status, {"content-type": "application/json"}, body))
    with pytest.raises(error) as info:
        await p.complete(REQ)
    assert type(info.value) is error
    assert info.value.provider == "gem" and info.value.upstream_status == status
    assert info.value.retryable == (status >= 500)


async def test_quota_error_carries_retry_delay() -> None:
    body = google_error(
        429, "RESOURCE_EXHAUSTED", "You exceeded your current quota.",
        {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": []},
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"},
    )
    with pytest.raises(RateLimitError) as info:
        await provider(lambda r: MockResponse(429, {}, body)).complete(REQ)
    assert info.value.retry_after == 37.0 and info.value.retryable
    assert info.value.headers()["retry-after"] == "37"


async def test_malformed_json_answer() -> None:
    with pytest.raises(ProviderResponseError, match="malformed JSON"):
        await provider(lambda r: MockResponse(200, {}, b'{"candidates": [')).complete(REQ)


# ------------------------------------------------------------------------------------ streams


def sse(*events: dict[str, Any]) -> bytes:
    return b"".join(b"data: " + json.dumps(e).encode() + b"\r\n\r\n" for e in events)


TEXT_EVENT = {"candidates": [{"content": {"role": "model", "parts": [{"text": "Hel"}]}}], "responseId": "r1",
              "modelVersion": "gemini-2.5-flash", "usageMetadata": {"promptTokenCount": 4, "totalTokenCount": 4}}


async def collect(p: GeminiProvider, req: ChatRequest = REQ) -> Assembler:
    asm = Assembler()
    async for chunk in p.stream(req):
        asm.add(chunk)
    return asm


@pytest.mark.parametrize(
    "body",
    [b"", sse(TEXT_EVENT), [sse(TEXT_EVENT), StreamInterruptedError("the upstream closed the connection mid-answer")],
     b"data: {\"candidates\": [\r\n\r\n"],
    ids=["empty", "no-finish", "dropped", "malformed-event"],
)
async def test_cut_streams_raise_stream_interrupted(body: Any) -> None:
    with pytest.raises(StreamInterruptedError) as info:
        await collect(provider(lambda r: MockResponse(200, {"content-type": "text/event-stream"}, body)))
    assert info.value.provider == "gem"


async def test_error_event_inside_stream() -> None:
    err = {"error": {"code": 503, "status": "UNAVAILABLE", "message": "The model is overloaded."}}
    with pytest.raises(ProviderUnavailableError, match="overloaded"):
        await collect(provider(lambda r: MockResponse(200, {}, sse(TEXT_EVENT, err))))


async def test_stream_usage_once_at_end_and_blocked_prompt() -> None:
    done = {"candidates": [{"content": {"role": "model", "parts": [{"text": "lo"}]}, "finishReason": "STOP"}],
            "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 2, "thoughtsTokenCount": 3,
                              "cachedContentTokenCount": 2}}
    chunks = [c async for c in provider(lambda r: MockResponse(200, {}, sse(TEXT_EVENT, done))).stream(REQ)]
    assert [c.usage for c in chunks if c.usage] == [chunks[-1].usage]
    u = chunks[-1].usage
    assert u is not None and (u.input_tokens, u.output_tokens, u.reasoning_tokens, u.cache_read_tokens) == (4, 5, 3, 2)
    blocked = {"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}, "usageMetadata": {"promptTokenCount": 9}}
    asm = await collect(provider(lambda r: MockResponse(200, {}, sse(blocked))))
    assert asm.result().finish_reason == "content_filter"
    whole = await provider(lambda r: MockResponse(200, {}, json.dumps(blocked).encode())).complete(REQ)
    assert whole.finish_reason == "content_filter" and whole.text == ""


# ---------------------------------------------------------------------------------- requests


def test_generation_options_and_tool_choice() -> None:
    tool = Tool("lookup", "Find a thing", {"type": "object", "properties": {"q": {"type": "string"}}})
    req = ChatRequest(
        model="gemini-2.5-flash", messages=(Message.user("x"),), tools=(tool,), tool_choice="lookup",
        temperature=0.3, top_p=0.8, top_k=20, max_tokens=100, stop=("END",), seed=1, n=2,
        response_format={"type": "json_schema", "json_schema": {"name": "o", "schema": {"type": "object"}}},
        reasoning=Reasoning(effort="low"),
    )
    body = body_of(req)
    assert body["generationConfig"] == {
        "temperature": 0.3, "topP": 0.8, "topK": 20, "maxOutputTokens": 100, "stopSequences": ["END"], "seed": 1,
        "candidateCount": 2, "responseMimeType": "application/json", "responseJsonSchema": {"type": "object"},
        "thinkingConfig": {"includeThoughts": True, "thinkingBudget": 1024},
    }
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["lookup"]}}
    for choice, mode in (("auto", "AUTO"), ("none", "NONE"), ("required", "ANY")):
        got = body_of(ChatRequest(model="m", messages=(Message.user("x"),), tools=(tool,), tool_choice=choice))
        assert got["toolConfig"] == {"functionCallingConfig": {"mode": mode}}


@pytest.mark.parametrize(
    ("model", "reasoning", "config"),
    [
        ("gemini-3-pro-preview", Reasoning(effort="high"), {"includeThoughts": True, "thinkingLevel": "high"}),
        ("gemini-3-flash-preview", Reasoning(enabled=False), {"thinkingLevel": "low"}),
        ("gemini-2.5-flash", Reasoning(enabled=False), {"thinkingBudget": 0}),
        ("gemini-2.5-pro", Reasoning(budget_tokens=2048), {"includeThoughts": True, "thinkingBudget": 2048}),
    ],
)
def test_thinking_config_per_model_family(model: str, reasoning: Reasoning, config: dict[str, Any]) -> None:
    body = body_of(ChatRequest(model=model, messages=(Message.user("x"),), reasoning=reasoning))
    assert body["generationConfig"]["thinkingConfig"] == config


def test_tool_results_name_their_function_and_signatures_go_back() -> None:
    msgs = (
        Message.user("weather?"),
        Message(role="assistant", tool_calls=(ToolCall("a", "weather", '{"city": "Paris"}'), ToolCall("b", "time", "{}")),
                reasoning_signature="SIG"),
        Message.tool("a", '{"temp": 21}'),
        Message.tool("b", "noon"),
        Message(role="tool", tool_call_id="b2", content="boom", is_error=True, name="time"),
    )
    body = body_of(ChatRequest(model="gemini-2.5-flash", messages=msgs))
    model_turn, results = body["contents"][1], body["contents"][2]
    assert model_turn["parts"][0]["thoughtSignature"] == "SIG"
    assert "thoughtSignature" not in model_turn["parts"][1]
    assert [p["functionResponse"] for p in results["parts"]] == [
        {"id": "a", "name": "weather", "response": {"temp": 21}},
        {"id": "b", "name": "time", "response": {"output": "noon"}},
        {"id": "b2", "name": "time", "response": {"error": "boom"}},
    ]
    no_sig = (Message.user("q"), Message.assistant(None, [ToolCall("c", "f", "{}")]), Message.tool("c", "ok"))
    g3 = body_of(ChatRequest(model="gemini-3-pro-preview", messages=no_sig))
    assert g3["contents"][1]["parts"][0]["thoughtSignature"] == DUMMY_SIGNATURE
    assert "thoughtSignature" not in body_of(ChatRequest(model="gemini-2.5-flash", messages=no_sig))["contents"][1]["parts"][0]


async def test_signature_round_trips_from_answer_to_next_request() -> None:
    answer = {"candidates": [{"content": {"role": "model", "parts": [
        {"functionCall": {"name": "f", "args": {"x": 1}}, "thoughtSignature": "S1"},
        {"functionCall": {"name": "f", "args": {"x": 2}}}]}, "finishReason": "STOP"}], "responseId": "rid"}
    result = await provider(lambda r: MockResponse(200, {}, json.dumps(answer).encode())).complete(REQ)
    assert result.finish_reason == "tool_calls" and result.reasoning_signature == "S1"
    assert [c.id for c in result.tool_calls] == ["call_rid_0", "call_rid_1"]
    follow = (*REQ.messages, Message(role="assistant", tool_calls=result.tool_calls,
                                     reasoning_signature=result.reasoning_signature))
    parts = body_of(ChatRequest(model="gemini-3-pro-preview", messages=follow))["contents"][1]["parts"]
    assert parts[0] == {"functionCall": {"id": "call_rid_0", "name": "f", "args": {"x": 1}}, "thoughtSignature": "S1"}


def test_images_and_extra_passthrough() -> None:
    msg = Message.user((ImagePart(url="data:image/jpeg;base64,QUJD"), ImagePart(url="gs://b/cat.png", media_type="image/png")))
    req = ChatRequest(model="m", messages=(msg,), extra={"safetySettings": [{"category": "HARM_CATEGORY_HATE_SPEECH",
                                                                               "threshold": "BLOCK_NONE"}],
                                                         "tools": [{"googleSearch": {}}]})
    body = body_of(req)
    assert body["contents"][0]["parts"] == [{"inlineData": {"mimeType": "image/jpeg", "data": "QUJD"}},
                                            {"fileData": {"fileUri": "gs://b/cat.png", "mimeType": "image/png"}}]
    assert body["safetySettings"][0]["threshold"] == "BLOCK_NONE" and body["tools"] == [{"googleSearch": {}}]


def test_openapi_schema_mode_inlines_refs_and_drops_rejected_keys() -> None:
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object", "additionalProperties": False,
        "$defs": {"Node": {"type": "object", "properties": {"name": {"type": "string"},
                                                            "child": {"$ref": "#/$defs/Node"}}}},
        "properties": {"root": {"$ref": "#/$defs/Node"}, "kind": {"const": "tree"}},
    }
    cleaned = openapi_schema(schema)
    text = json.dumps(cleaned)
    assert "$ref" not in text and "$defs" not in text and "additionalProperties" not in text and "$schema" not in text
    assert cleaned["properties"]["root"]["properties"]["name"] == {"type": "string"}
    assert cleaned["properties"]["kind"] == {"enum": ["tree"]}
    tool = Tool("t", None, schema)
    decl = body_of(ChatRequest(model="m", messages=(Message.user("x"),), tools=(tool,)), schema_mode="openapi")
    assert decl["tools"][0]["functionDeclarations"][0]["parameters"] == cleaned
    full = body_of(ChatRequest(model="m", messages=(Message.user("x"),), tools=(tool,)))
    assert "$schema" not in full["tools"][0]["functionDeclarations"][0]["parametersJsonSchema"]


# ------------------------------------------------------------------------------ other endpoints


async def test_list_models_pages_embed_and_health() -> None:
    pages = {
        "": {"models": [{"name": "models/gemini-2.5-flash", "inputTokenLimit": 1048576, "outputTokenLimit": 65536}],
             "nextPageToken": "p2"},
        "p2": {"models": [{"name": "models/text-embedding-004"}]},
    }

    def handler(r: Any) -> MockResponse:
        if ":batchEmbedContents" in r.url:
            n = len(json.loads(r.body)["requests"])
            return MockResponse(200, {}, json.dumps({"embeddings": [{"values": [0.5, float(i)]} for i in range(n)]}).encode())
        token = r.url.split("pageToken=")[1] if "pageToken=" in r.url else ""
        return MockResponse(200, {}, json.dumps(pages[token]).encode())

    p = provider(handler)
    models = await p.list_models()
    assert [(m.id, m.context_window) for m in models] == [("gemini-2.5-flash", 1048576), ("text-embedding-004", None)]
    emb = await p.embed(EmbeddingRequest(model="text-embedding-004", input=("a", "b"), dimensions=2))
    assert emb.vectors == ((0.5, 0.0), (0.5, 1.0))
    sent = p.transport.requests[-1]  # type: ignore[attr-defined]
    assert sent.url == f"{BASE}/v1beta/models/text-embedding-004:batchEmbedContents"
    assert json.loads(sent.body)["requests"][0] == {"model": "models/text-embedding-004",
                                                    "content": {"parts": [{"text": "a"}]}, "outputDimensionality": 2}
    assert (await p.health()).ok
    bad = provider(lambda r: MockResponse(401, {}, google_error(401, "UNAUTHENTICATED", "bad key")))
    status = await bad.health()
    assert not status.ok and "api_key" in status.detail
