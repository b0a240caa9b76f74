"""The Gemini adapter against every recorded generateContent exchange in shared/data/wire/google.

For each chat interaction (generativelanguage or aiplatform, streamed or not):
- the recorded answer, sent through the provider over a mock transport, gives the text, reasoning,
  tool calls, finish reason and usage that this test derives on its own from the recorded JSON;
- the recorded request, converted to a ChatRequest (``chat_request_from_body``), comes back out of
  ``to_wire`` with the recorded body's shape.

Fields llmrelay deliberately does not model are carried through ``ChatRequest.extra`` instead, and
so still round-trip (see ``PASSTHROUGH``); ``NOT_SENT`` lists what the adapter drops on purpose.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import pytest
from tests.conftest import WIRE
from tests.providers.wire_util import Interaction, body_lines, cassettes, load_cassette

from llmrelay.providers.base import ProviderSettings
from llmrelay.providers.gemini import GeminiProvider
from llmrelay.streaming import Assembler
from llmrelay.transport import MockResponse, MockTransport
from llmrelay.types import (
    ChatRequest,
    DocumentPart,
    ImagePart,
    Message,
    Part,
    Reasoning,
    TextPart,
    Tool,
    ToolCall,
)

CHAT = re.compile(r"/models/[^/:]+:(generateContent|streamGenerateContent)$")

# Why each non-chat interaction in the google folder is not a chat test.
SKIP_REASONS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^https://oauth2\.googleapis\.com/"), "OAuth token exchange (Vertex service-account auth)"),
    (re.compile(r"fileSearchStores"), "file-search store management (upload/delete), not a chat call"),
    (re.compile(r":countTokens$"), "countTokens: covered by test_count_tokens_parses_recorded_answer"),
    (re.compile(r"^https://api\.(openai|anthropic)\.com/"), "another provider's API (history fixture)"),
    (re.compile(r"^https://(example-files|data\.grepit)"), "download of a URL input by the client"),
]

# Recorded request fields outside llmrelay's unified model, passed through ChatRequest.extra.
PASSTHROUGH = (
    "labels",  # Vertex billing labels
    "modelArmorConfig",  # Vertex Model Armor templates
    "tools[] other than functionDeclarations",  # googleSearch, urlContext, fileSearch, codeExecution
    "toolConfig.includeServerSideToolInvocations",
    "generationConfig.responseModalities / logprobs / responseLogprobs",
    "generationConfig.thinkingConfig not expressible as Reasoning (includeThoughts: false alone)",
)
# Recorded request content the adapter does not send back, on purpose.
NOT_SENT = (
    "thought text parts in history: Gemini ignores them and they would cost input tokens",
    "toolCall/toolResponse parts of server-side tools in history",
)

_SCHEMA_KEYS = {"args", "response", "parametersJsonSchema", "parameters", "responseJsonSchema", "responseSchema"}


def _interactions() -> list[Any]:
    params = []
    for path in cassettes(WIRE, "google"):
        for it in load_cassette(path):
            reason = _skip_reason(it)
            marks = [pytest.mark.skip(reason=reason)] if reason else []
            params.append(pytest.param(it, id=it.id, marks=marks))
    return params


def _skip_reason(it: Interaction) -> str | None:
    if CHAT.search(it.uri_path):
        return None
    for pattern, reason in SKIP_REASONS:
        if pattern.search(it.uri.split("?")[0]):
            return reason
    raise AssertionError(f"{it.id}: no listed reason to skip {it.uri}")


ALL = _interactions()


def test_every_recording_is_chat_or_skipped_for_a_listed_reason() -> None:
    if not ALL:
        pytest.skip(f"no recordings at {WIRE}")
    chat = [p for p in ALL if not p.marks]
    assert len(chat) >= 50, "the google folder has at least 50 chat exchanges"


# ----------------------------------------------------------------------- independent expectations


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(w[:1].upper() + w[1:] for w in rest)


def camelize(obj: Any) -> Any:
    """Proto-JSON accepts snake_case too; some recordings use it. Schemas and args stay as is."""
    if isinstance(obj, list):
        return [camelize(x) for x in obj]
    if not isinstance(obj, Mapping):
        return obj
    out = {}
    for key, value in obj.items():
        name = _camel(key) if not key.startswith("$") else key
        out[name] = value if name in _SCHEMA_KEYS else camelize(value)
    return out


def _events(it: Interaction) -> list[dict[str, Any]]:
    if not it.is_stream:
        return [it.response_body]
    return [json.loads(line[5:]) for line in body_lines(it.response_text or "") if line.startswith(b"data:")]


FINISH = {"STOP": "stop", "MAX_TOKENS": "length", "SAFETY": "content_filter", "RECITATION": "content_filter"}


def expected(it: Interaction) -> dict[str, Any]:
    text, reasoning, finish = "", "", None
    calls: list[tuple[str, Any]] = []
    meta: dict[str, Any] = {}
    for ev in _events(it):
        meta = ev.get("usageMetadata") or meta
        cand = (ev.get("candidates") or [{}])[0]
        finish = cand.get("finishReason") or finish
        if not ev.get("candidates") and (ev.get("promptFeedback") or {}).get("blockReason"):
            finish = "SAFETY"
        for part in (cand.get("content") or {}).get("parts") or ():
            if "functionCall" in part:
                calls.append((part["functionCall"]["name"], part["functionCall"].get("args") or {}))
            elif part.get("thought"):
                reasoning += part.get("text", "")
            else:
                text += part.get("text", "")
    reason = FINISH[finish or "STOP"]
    if calls and reason == "stop":
        reason = "tool_calls"
    thoughts = meta.get("thoughtsTokenCount", 0)
    return {
        "text": text,
        "reasoning": reasoning,
        "calls": calls,
        "finish": reason,
        "input": meta.get("promptTokenCount", 0) + meta.get("toolUsePromptTokenCount", 0),
        "output": meta.get("candidatesTokenCount", 0) + thoughts,
        "reasoning_tokens": thoughts,
        "cached": meta.get("cachedContentTokenCount", 0),
    }


def _provider(it: Interaction, handler: Any, schema_mode: str = "json_schema") -> GeminiProvider:
    base = re.match(r"https://[^/]+", it.uri)
    assert base is not None
    prefix = it.uri_path.rsplit("/", 1)[0]
    settings = ProviderSettings(
        name="g", kind="gemini", base_url=base.group(0), api_key="k", options={"path_prefix": prefix, "schema_mode": schema_mode}
    )
    return GeminiProvider(settings, MockTransport(handler))


def _model(it: Interaction) -> str:
    return it.uri_path.rsplit("/", 1)[1].split(":")[0]


@pytest.mark.parametrize("it", ALL)
async def test_recorded_answer_is_parsed(it: Interaction) -> None:
    want = expected(it)
    if it.is_stream:
        response = MockResponse(200, it.response_headers, (it.response_text or "").encode())
    else:
        response = MockResponse(200, {"content-type": "application/json"}, json.dumps(it.response_body).encode())
    provider = _provider(it, lambda req: response)
    request = ChatRequest(model=_model(it), messages=(Message.user("x"),))
    if it.is_stream:
        asm = Assembler()
        async for chunk in provider.stream(request):
            asm.add(chunk)
        result = asm.result()
    else:
        result = await provider.complete(request)
    sent = provider.transport.requests[0]  # type: ignore[attr-defined]
    assert sent.url.split("?")[0] == it.uri.split("?")[0]
    assert sent.headers["x-goog-api-key"] == "k"
    assert result.text == want["text"]
    assert result.reasoning == want["reasoning"]
    assert [(c.name, json.loads(c.arguments)) for c in result.tool_calls] == want["calls"]
    assert len({c.id for c in result.tool_calls}) == len(result.tool_calls), "tool call ids are unique"
    assert result.finish_reason == want["finish"]
    u = result.usage
    assert (u.input_tokens, u.output_tokens, u.reasoning_tokens, u.cache_read_tokens) == (
        want["input"],
        want["output"],
        want["reasoning_tokens"],
        want["cached"],
    )


# ----------------------------------------------------------------------------- request shapes


def _parts(parts: list[dict[str, Any]]) -> list[Part]:
    out: list[Part] = []
    for p in parts:
        if "text" in p:
            out.append(TextPart(p["text"]))
        elif "inlineData" in p or "fileData" in p:
            d = p.get("inlineData") or p["fileData"]
            cls = ImagePart if d.get("mimeType", "").startswith("image/") else DocumentPart
            if "inlineData" in p:
                out.append(cls(data=d["data"], media_type=d["mimeType"]))
            else:
                out.append(cls(url=d["fileUri"], media_type=d.get("mimeType")))
    return out


def _content(parts: list[Part]) -> str | tuple[Part, ...]:
    if len(parts) == 1 and isinstance(parts[0], TextPart):
        return parts[0].text
    return tuple(parts)


def _messages(body: Mapping[str, Any]) -> list[Message]:
    msgs: list[Message] = []
    if "systemInstruction" in body:
        msgs.append(Message.system("".join(p["text"] for p in body["systemInstruction"]["parts"])))
    for content in body["contents"]:
        parts = [p for p in content["parts"] if not p.get("thought") and not ({"toolCall", "toolResponse"} & set(p))]
        if content["role"] == "model":
            calls = [p["functionCall"] for p in parts if "functionCall" in p]
            sig = next((p["thoughtSignature"] for p in parts if "thoughtSignature" in p), None)
            msgs.append(
                Message(
                    role="assistant",
                    content=_content(_parts(parts)) if any("text" in p for p in parts) else None,
                    tool_calls=tuple(ToolCall(c["id"], c["name"], json.dumps(c["args"])) for c in calls),
                    reasoning_signature=sig,
                )
            )
            continue
        for p in parts:
            if "functionResponse" in p:
                r = p["functionResponse"]
                msgs.append(Message.tool(r["id"], json.dumps(r["response"])))
        rest = _parts([p for p in parts if "functionResponse" not in p])
        if rest:
            msgs.append(Message.user(_content(rest)))
    return msgs


def chat_request_from_body(model: str, body: Mapping[str, Any]) -> tuple[ChatRequest, str]:
    """A ChatRequest equivalent to a recorded Gemini body, and the schema mode it used."""
    body = camelize(body)
    extra: dict[str, Any] = {k: body[k] for k in ("labels", "modelArmorConfig") if k in body}
    tools, mode = [], "json_schema"
    for entry in body.get("tools", ()):
        if "functionDeclarations" not in entry:
            extra.setdefault("tools", []).append(entry)
            continue
        for d in entry["functionDeclarations"]:
            mode = "openapi" if "parameters" in d else mode
            tools.append(Tool(d["name"], d.get("description"), d.get("parameters") or d.get("parametersJsonSchema")))
    choice = None
    fcc = body.get("toolConfig", {}).get("functionCallingConfig")
    if fcc:
        allowed = fcc.get("allowedFunctionNames")
        choice = {"AUTO": "auto", "NONE": "none", "VALIDATED": "auto"}.get(fcc["mode"], "required")
        if fcc["mode"] == "VALIDATED":
            tools = [replace(t, strict=True) for t in tools]
        if allowed and len(allowed) == 1:
            choice = allowed[0]
        assert not allowed or len(allowed) == 1 or set(allowed) == {t.name for t in tools}
    if "includeServerSideToolInvocations" in body.get("toolConfig", {}):
        extra["toolConfig"] = body["toolConfig"]
    cfg = dict(body.get("generationConfig", {}))
    fmt = None
    if cfg.pop("responseMimeType", None) == "application/json":
        schema = cfg.pop("responseJsonSchema", None) or cfg.pop("responseSchema", None)
        fmt = {"type": "json_schema", "json_schema": {"schema": schema}} if schema else {"type": "json_object"}
    reasoning = None
    thinking = cfg.pop("thinkingConfig", None)
    if thinking == {"thinkingBudget": 0}:
        reasoning = Reasoning(enabled=False)
    elif thinking and thinking.get("includeThoughts"):
        reasoning = Reasoning(budget_tokens=thinking.get("thinkingBudget"))
    elif thinking:
        cfg["thinkingConfig"] = thinking
    request = ChatRequest(
        model=model,
        messages=tuple(_messages(body)),
        tools=tuple(tools),
        tool_choice=choice,
        temperature=cfg.pop("temperature", None),
        top_p=cfg.pop("topP", None),
        top_k=cfg.pop("topK", None),
        max_tokens=cfg.pop("maxOutputTokens", None),
        seed=cfg.pop("seed", None),
        stop=tuple(cfg.pop("stopSequences", ())),
        response_format=fmt,
        reasoning=reasoning,
        extra={**extra, **({"generationConfig": cfg} if cfg else {})},
    )
    return request, mode


def normalise(body: Mapping[str, Any], tool_names: set[str]) -> dict[str, Any]:
    """The recorded body as the adapter should send it: camelCase, NOT_SENT parts removed,
    equivalent spellings unified (responseSchema -> responseJsonSchema, an allow-list of every
    tool -> mode ANY alone), empty generationConfig dropped, tools in a stable order."""
    body = camelize(body)
    out = dict(body)
    out["contents"] = [
        {**c, "parts": [p for p in c["parts"] if not p.get("thought") and not ({"toolCall", "toolResponse"} & set(p))]}
        for c in body["contents"]
    ]
    out["contents"] = [c for c in out["contents"] if c["parts"]]
    cfg = dict(body.get("generationConfig", {}))
    if "responseSchema" in cfg:
        cfg["responseJsonSchema"] = cfg.pop("responseSchema")
    if cfg:
        out["generationConfig"] = cfg
    else:
        out.pop("generationConfig", None)
    fcc = body.get("toolConfig", {}).get("functionCallingConfig")
    if fcc and set(fcc.get("allowedFunctionNames", ())) == tool_names and len(tool_names) > 1:
        out["toolConfig"] = {**body["toolConfig"], "functionCallingConfig": {"mode": fcc["mode"]}}
    if "tools" in out:
        out["tools"] = sorted(out["tools"], key=lambda t: json.dumps(t, sort_keys=True))
    return out


@pytest.mark.parametrize("it", [p for p in ALL if not p.marks and p.values[0].request_body is not None])
def test_request_has_recorded_shape(it: Interaction) -> None:
    request, mode = chat_request_from_body(_model(it), it.request_body)
    provider = _provider(it, lambda req: MockResponse(), schema_mode=mode)
    http = provider.to_wire(request, stream="streamGenerateContent" in it.uri)
    assert http.url == it.uri
    sent = json.loads(http.body or b"{}")
    if "tools" in sent:
        sent["tools"] = sorted(sent["tools"], key=lambda t: json.dumps(t, sort_keys=True))
    assert sent == normalise(it.request_body, {t.name for t in request.tools})


# ------------------------------------------------------------------------------ countTokens


async def test_count_tokens_parses_recorded_answer() -> None:
    recorded = [
        it
        for path in cassettes(WIRE, "google")
        for it in load_cassette(path)
        if it.uri_path.endswith(":countTokens") and it.response_body
    ]
    if not recorded:
        pytest.skip("no countTokens recording")
    for it in recorded:
        provider = _provider(it, lambda req, it=it: MockResponse(200, {}, json.dumps(it.response_body).encode()))
        count = await provider.count_tokens(ChatRequest(model=_model(it), messages=(Message.user("hi"),)))
        assert count == it.response_body["totalTokens"]
        sent = provider.transport.requests[0]  # type: ignore[attr-defined]
        assert sent.url.endswith(f"/{_model(it)}:countTokens")
        assert json.loads(sent.body or b"{}")["generateContentRequest"]["model"] == f"models/{_model(it)}"
