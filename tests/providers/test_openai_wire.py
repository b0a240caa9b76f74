"""The OpenAI adapter against every recorded Chat Completions exchange in shared/data/wire.

One test per interaction, collected by glob so new recordings are covered automatically:
(1) the recorded answer (JSON or SSE) parses into the text, reasoning, tool calls, finish reason and
usage that this test derives on its own from the raw JSON, and recorded errors map to the right
class; (2) a ChatRequest equivalent to the recorded request body makes the adapter send a body of
the same shape.

Differences the shape comparison deliberately ignores (``_normalise``), each equivalent on the wire
or outside what ChatRequest models:
- ``n: 1`` and top-level ``null`` values (the defaults);
- an assistant message without ``content`` vs ``content: null``; a list of text parts vs the joined
  string; Mistral's ``prefix: false``, empty ``tool_calls`` and per-call ``index`` in history;
  Mistral tools recorded without ``"type": "function"``; consecutive Mistral thinking blocks
  (merged: Message.reasoning is one string);
- the ``developer`` role, read as ``system``;
- ``max_tokens`` vs ``max_completion_tokens`` for non-reasoning models (OpenAI takes both; we send
  ``max_tokens``, which every compatible server knows; reasoning models must match exactly).
Not modelled at all, so that request-shape test is skipped with the reason: ``input_audio`` parts.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

import orjson
import pytest
from tests.conftest import WIRE
from tests.providers.wire_util import Interaction, body_lines, cassettes, load_cassette

from llmrelay.errors import (
    InvalidRequestError,
    LLMRelayError,
    ModelNotFoundError,
    ProviderError,
    RateLimitError,
)
from llmrelay.providers.base import ProviderSettings
from llmrelay.providers.openai import OpenAIProvider
from llmrelay.providers.openai_wire import is_reasoning_model
from llmrelay.providers.presets import PRESETS
from llmrelay.streaming import Assembler
from llmrelay.transport import HTTPRequest, MockResponse, MockTransport
from llmrelay.types import (
    ChatRequest,
    ChatResult,
    DocumentPart,
    ImagePart,
    Message,
    Part,
    Reasoning,
    TextPart,
    Tool,
    ToolCall,
)

# Recording folder -> the preset whose dialect it records (ollama.com/v1 is plain OpenAI-compatible
# and takes assistant reasoning back as "reasoning").
FOLDERS: dict[str, tuple[str, dict[str, Any]]] = {
    "openai": ("openai", {}),
    "groq": ("groq", {}),
    "mistral": ("mistral", {}),
    "deepseek": ("deepseek", {}),
    "openrouter": ("openrouter", {}),
    "ollama": ("openai", {"reasoning_echo": "reasoning"}),
}


def _skip_reason(it: Interaction) -> str | None:
    path = it.uri_path
    if path.endswith("/chat/completions"):
        return None
    if path.endswith("/responses"):
        return "OpenAI Responses API (/v1/responses): not the Chat Completions protocol"
    if it.method == "GET":
        return f"a file download made by the recording client ({it.uri[:60]}), not an API call"
    if ":generateContent" in path or ":streamGenerateContent" in path:
        return "Gemini's native API, covered by the Gemini adapter's tests"
    return f"not a chat completions call: {it.method} {path}"


def _params() -> list[Any]:
    out = []
    for path in cassettes(WIRE, *FOLDERS):
        for it in load_cassette(path):
            reason = _skip_reason(it)
            marks = [pytest.mark.skip(reason=reason)] if reason else []
            out.append(pytest.param(it, id=it.id, marks=marks))
    return out


PARAMS = _params()


def _provider(it: Interaction, handler: Any = None) -> tuple[OpenAIProvider, MockTransport]:
    preset_name, extra = FOLDERS[it.path.parent.name]
    preset = PRESETS[preset_name]
    base = it.uri.split("#")[0].removesuffix("/chat/completions")
    settings = ProviderSettings(
        name=it.path.parent.name, kind=preset_name, base_url=base, api_key="sk-test",
        options={**preset.options, **extra},
    )
    transport = MockTransport(handler or (lambda req: MockResponse(500)))
    return OpenAIProvider(settings, transport), transport


# ---------------------------------------------------------------------------- (1) the answers


def _recorded_response(it: Interaction) -> MockResponse:
    headers = dict(it.response_headers)
    headers.pop("content-encoding", None)
    headers.pop("content-length", None)
    if it.response_text is not None and it.response_body is None:
        data = it.response_text.encode()
        # Uneven pieces, so lines and events straddle reads as they do on a real socket.
        pieces = [data[i : i + 97] for i in range(0, len(data), 97)]
        return MockResponse(it.status, headers, pieces)
    return MockResponse(it.status, headers, orjson.dumps(it.response_body))


def _stream_payloads(it: Interaction) -> list[tuple[str | None, Any]]:
    """(event name, parsed data) for each SSE event, read naively from the recording."""
    out: list[tuple[str | None, Any]] = []
    event: str | None = None
    for line in body_lines(it.response_text or ""):
        if line.startswith(b"event:"):
            event = line[6:].strip().decode()
        elif line.startswith(b"data:"):
            data = line[5:].strip()
            if data != b"[DONE]":
                out.append((event, orjson.loads(data)))
        elif not line:
            event = None
    return out


def _text_and_thinking(content: Any) -> tuple[str, str]:
    if content is None:
        return "", ""
    if isinstance(content, str):
        return content, ""
    text = "".join(b["text"] for b in content if b.get("type") == "text")
    thinking = "".join(t["text"] for b in content if b.get("type") == "thinking" for t in b["thinking"])
    return text, thinking


def _expected_error(status: int, payload: Any) -> type[LLMRelayError]:
    err = payload.get("error") if isinstance(payload, Mapping) else None
    code = err.get("code") if isinstance(err, Mapping) else None
    if code == "model_not_found":
        return ModelNotFoundError
    status = status if status >= 400 else (err or {}).get("status_code") or (code if isinstance(code, int) else 0)
    if status == 429:
        return RateLimitError
    if 400 <= status < 500:
        return InvalidRequestError
    return ProviderError


def _expect_usage(result: ChatResult, usage: Mapping[str, Any] | None) -> None:
    if not usage:
        assert result.usage.total_tokens == 0
        return
    assert result.usage.input_tokens == usage["prompt_tokens"]
    assert result.usage.output_tokens == usage["completion_tokens"]
    details = usage.get("prompt_tokens_details") or {}
    cached = details.get("cached_tokens") or usage.get("prompt_cache_hit_tokens") or 0
    assert result.usage.cache_read_tokens == cached
    reasoning = (usage.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0
    assert result.usage.reasoning_tokens == reasoning


def _finish(raw: str | None, has_calls: bool) -> str:
    if has_calls and raw in (None, "stop", "tool_calls"):
        return "tool_calls"
    return {"end_turn": "stop", None: "stop"}.get(raw, raw)  # type: ignore[arg-type]


def _expected_from_stream(it: Interaction) -> dict[str, Any]:
    text, reasoning, finish, usage = [], [], None, None
    calls: dict[int, dict[str, str]] = {}
    for _event, payload in _stream_payloads(it):
        usage = payload.get("usage") or (payload.get("x_groq") or {}).get("usage") or usage
        for choice in payload.get("choices") or ():
            delta = choice.get("delta") or {}
            t, th = _text_and_thinking(delta.get("content"))
            text.append(t)
            reasoning.append(delta.get("reasoning_content") or delta.get("reasoning") or th)
            for pos, c in enumerate(delta.get("tool_calls") or ()):
                call = calls.setdefault(c.get("index", pos), {"id": "", "name": "", "arguments": ""})
                call["id"] = call["id"] or c.get("id") or ""
                fn = c.get("function") or {}
                call["name"] = call["name"] or fn.get("name") or ""
                call["arguments"] += fn.get("arguments") or ""
            finish = choice.get("finish_reason") or finish
    return {"text": "".join(text), "reasoning": "".join(reasoning), "calls": calls, "finish": finish, "usage": usage}


@pytest.mark.parametrize("it", PARAMS)
async def test_recorded_answer_parses(it: Interaction) -> None:
    provider, _ = _provider(it, lambda req: _recorded_response(it))
    request = ChatRequest(model="m", messages=(Message.user("x"),))
    errors = [p for e, p in _stream_payloads(it) if e == "error" or p.get("error")] if it.is_stream else []
    if it.status >= 400 or errors:
        expected = _expected_error(it.status, it.response_body if it.status >= 400 else errors[0])
        with pytest.raises(LLMRelayError) as info:
            if it.is_stream:
                [c async for c in provider.stream(request)]
            else:
                await provider.complete(request)
        assert type(info.value) is expected, info.value
        assert info.value.provider == provider.name
        return
    if it.is_stream:
        asm = Assembler()
        async for chunk in provider.stream(request):
            asm.add(chunk)
        result = asm.result(provider.name)
        exp = _expected_from_stream(it)
    else:
        result = await provider.complete(request)
        choice = it.response_body["choices"][0]
        msg = choice["message"]
        text, thinking = _text_and_thinking(msg.get("content"))
        exp = {
            "text": text,
            "reasoning": msg.get("reasoning_content") or msg.get("reasoning") or thinking,
            "calls": {i: {**c["function"], "id": c.get("id") or ""} for i, c in enumerate(msg.get("tool_calls") or ())},
            "finish": choice.get("finish_reason"),
            "usage": it.response_body.get("usage"),
        }
    assert result.text == exp["text"]
    assert result.reasoning == exp["reasoning"]
    assert [(c.name, c.arguments) for c in result.tool_calls] == [
        # A call may come without arguments (OpenRouter, a tool whose parameters are all optional).
        (c["name"], c.get("arguments") or "{}") for _, c in sorted(exp["calls"].items())
    ]
    for got, (i, want) in zip(result.tool_calls, sorted(exp["calls"].items()), strict=True):
        assert got.id == (want["id"] or f"call_{i}")  # servers that omit ids get stable ones
    assert result.finish_reason == _finish(exp["finish"], bool(exp["calls"]))
    _expect_usage(result, exp["usage"])
    assert result.provider == provider.name


# ----------------------------------------------------------------------- (2) the request shape


def _part(raw: Mapping[str, Any]) -> Part:
    kind = raw["type"]
    if kind == "text":
        return TextPart(raw["text"], cache_control=raw.get("cache_control"))
    if kind == "image_url":
        img = raw["image_url"]
        url = img["url"]
        if url.startswith("data:"):
            media, _, data = url[5:].partition(";base64,")
            return ImagePart(data=data, media_type=media, detail=img.get("detail"))
        return ImagePart(url=url, detail=img.get("detail"))
    if kind == "file":
        f = raw["file"]
        data = f["file_data"]
        if data.startswith("data:"):
            media, _, b64 = data[5:].partition(";base64,")
            return DocumentPart(data=b64, media_type=media, name=f.get("filename"))
        return DocumentPart(url=data, name=f.get("filename"))
    raise NotImplementedError(f"content part {kind!r} is not modelled by ChatRequest")


def _message(raw: Mapping[str, Any]) -> Message:
    role = "system" if raw["role"] == "developer" else raw["role"]
    content = raw.get("content")
    if role == "assistant":
        text, thinking = _text_and_thinking(content)
        reasoning = raw.get("reasoning_content", raw.get("reasoning"))
        calls = tuple(
            ToolCall(c["id"], c["function"]["name"], c["function"]["arguments"]) for c in raw.get("tool_calls") or ()
        )
        return Message("assistant", text or None, calls, reasoning=thinking or reasoning)
    if isinstance(content, list):
        content = tuple(_part(p) for p in content)
    return Message(role, content, tool_call_id=raw.get("tool_call_id"), name=raw.get("name"))


_READ = {"model", "messages", "tools", "tool_choice", "parallel_tool_calls", "temperature", "top_p", "top_k",
         "max_tokens", "max_completion_tokens", "stop", "seed", "response_format", "reasoning_effort", "n",
         "stream", "stream_options", "user"}


def _reasoning(body: Mapping[str, Any]) -> Reasoning | None:
    if body.get("reasoning_effort"):
        return Reasoning(effort=body["reasoning_effort"])
    spec = body.get("reasoning")
    if not isinstance(spec, Mapping):
        return None
    if spec.get("effort") == "none" or spec.get("enabled") is False:
        return Reasoning(enabled=False)
    return Reasoning(effort=spec.get("effort"), budget_tokens=spec.get("max_tokens"))


def _to_request(body: Mapping[str, Any]) -> ChatRequest:
    """A ChatRequest equivalent to a recorded OpenAI-style request body."""
    tools_raw = body.get("tools") or ()
    function_tools = all("function" in t for t in tools_raw)
    extra = {k: v for k, v in body.items() if k not in _READ and k != "reasoning" and v is not None}
    if not function_tools:
        extra["tools"] = tools_raw  # provider-side tools (OpenRouter web search...) pass through untouched
    if isinstance(body.get("reasoning"), Mapping) and _reasoning(body) is None:
        extra["reasoning"] = body["reasoning"]
    choice = body.get("tool_choice")
    stop = body.get("stop")
    return ChatRequest(
        model=body["model"],
        messages=tuple(_message(m) for m in body["messages"]),
        tools=tuple(
            Tool(t["function"]["name"], t["function"].get("description"), t["function"].get("parameters", {}),
                 t["function"].get("strict"))
            for t in tools_raw
        ) if function_tools else (),
        tool_choice=choice["function"]["name"] if isinstance(choice, Mapping) else choice,
        parallel_tool_calls=body.get("parallel_tool_calls"),
        temperature=body.get("temperature"),
        top_p=body.get("top_p"),
        top_k=body.get("top_k"),
        max_tokens=body.get("max_completion_tokens") or body.get("max_tokens"),
        stop=(stop,) if isinstance(stop, str) else tuple(stop or ()),
        seed=body.get("seed"),
        response_format=body.get("response_format"),
        reasoning=_reasoning(body),
        n=body.get("n") or 1,
        stream=bool(body.get("stream")),
        user=body.get("user"),
        extra=extra,
    )


def _normalise_message(m: dict[str, Any]) -> dict[str, Any]:
    m = dict(m)
    if m.get("role") == "developer":
        m["role"] = "system"
    m.pop("prefix", None)
    if m.get("tool_calls") == []:
        del m["tool_calls"]
    for call in m.get("tool_calls") or ():
        call.pop("index", None)
    content = m.get("content")
    if isinstance(content, list):
        thinking = [t["text"] for b in content if b.get("type") == "thinking" for t in b["thinking"]]
        texts = [b for b in content if b.get("type") != "thinking"]
        if all(b.get("type") == "text" and "cache_control" not in b for b in texts):
            joined = "".join(b["text"] for b in texts)
            content = joined if not thinking else [
                {"type": "thinking", "thinking": [{"type": "text", "text": "".join(thinking)}]},
                *([{"type": "text", "text": joined}] if joined else []),
            ]
        m["content"] = content
    if m.get("role") == "assistant" and not m.get("content"):
        m["content"] = None
    return m


def _normalise(body: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in body.items() if v is not None}
    if out.get("n") == 1:
        del out["n"]
    if "max_completion_tokens" in out and not is_reasoning_model(out["model"]):
        out["max_tokens"] = out.pop("max_completion_tokens")
    out["messages"] = [_normalise_message(m) for m in out["messages"]]
    for tool in out.get("tools") or ():
        if "function" in tool:
            tool.setdefault("type", "function")
    return out


@pytest.mark.parametrize("it", PARAMS)
def test_request_has_the_recorded_shape(it: Interaction) -> None:
    recorded = orjson.loads(orjson.dumps(it.request_body))  # a private deep copy
    parts = itertools.chain.from_iterable(
        m["content"] for m in recorded["messages"] if isinstance(m.get("content"), list)
    )
    if any(p.get("type") == "input_audio" for p in parts):
        pytest.skip("input_audio parts are not modelled by ChatRequest (no audio part type)")
    provider, _ = _provider(it)
    http: HTTPRequest = provider.to_wire(_to_request(recorded), stream=bool(recorded.get("stream")))
    sent = orjson.loads(http.body or b"")
    assert _normalise(sent) == _normalise(recorded)
    assert http.url == it.uri.split("#")[0]
    assert http.headers["authorization"] == "Bearer sk-test"
    if recorded.get("stream"):
        assert http.headers["accept"] == "text/event-stream"


def test_every_folder_has_chat_recordings() -> None:
    """Guards the glob: if the recordings move, these tests must not silently pass with none."""
    if not WIRE.is_dir():
        pytest.skip(f"no recordings at {WIRE}")
    found = {p.values[0].path.parent.name for p in PARAMS if not p.marks}
    assert found == set(FOLDERS)
