"""The OpenAI Chat Completions wire format at the edge: request JSON -> ChatRequest, and
ChatResult / Chunk streams -> response JSON / SSE bytes.

    >>> req = decode_chat({"model": "fast", "messages": [{"role": "user", "content": "Hi"}]})
    >>> req.messages[0].text()
    'Hi'

Usage always has OpenAI's semantics (``prompt_tokens`` includes cached input, ``completion_tokens``
includes reasoning) and carries ``cost`` in USD, OpenRouter's convention.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson

from ..types import (
    ChatRequest,
    ChatResult,
    Choice,
    Chunk,
    DocumentPart,
    ImagePart,
    Message,
    Part,
    Reasoning,
    TextPart,
    Tool,
    ToolCall,
    Usage,
)
from ._validate import bad, lst, model_name, obj, opt_bool, opt_int, opt_num, opt_str, stops, string

if TYPE_CHECKING:
    from ..caching.decoded import Rendered

# Fields read into ChatRequest; anything else in the body is passed to the provider untouched.
_KNOWN = frozenset({
    "model", "messages", "tools", "tool_choice", "parallel_tool_calls", "temperature", "top_p",
    "max_tokens", "max_completion_tokens", "stop", "seed", "response_format", "reasoning_effort", "n",
    "stream", "stream_options", "user", "metadata", "functions", "function_call", "top_k",
})
# A body with no other field than these decodes without looking for the rest (decode_chat).
_SIMPLE = frozenset({"model", "messages", "stream", "stream_options", "user"})
_EFFORTS = ("minimal", "low", "medium", "high", "xhigh")


# ------------------------------------------------------------------------------------ requests


def decode_chat(body: Any) -> ChatRequest:
    """A ChatRequest from a parsed chat.completions body; raises InvalidRequestError naming the field."""
    body = obj(body, "body")
    model = model_name(body)
    if "messages" not in body:
        bad("messages", "missing required field")
    messages = tuple([_message(m, i) for i, m in enumerate(lst(body["messages"], "messages", nonempty=True))])
    if _SIMPLE.issuperset(body):
        # Only a model, messages and the stream switches (most calls): the other fields' checks
        # would each find nothing; every other field keeps its default, as below.
        return ChatRequest(model, messages, stream=bool(opt_bool(body, "stream")), user=opt_str(body, "user"))
    effort = opt_str(body, "reasoning_effort")
    if effort is not None and effort not in _EFFORTS:
        bad("reasoning_effort", f"must be one of {', '.join(_EFFORTS)}")
    rf = body.get("response_format")
    meta = body.get("metadata")
    return ChatRequest(
        model=model,
        messages=messages,
        tools=_tools(body.get("tools")),
        tool_choice=_tool_choice(body.get("tool_choice")),
        parallel_tool_calls=opt_bool(body, "parallel_tool_calls"),
        temperature=opt_num(body, "temperature", 0, 2),
        top_p=opt_num(body, "top_p", 0, 1),
        top_k=opt_int(body, "top_k"),
        max_tokens=opt_int(body, "max_completion_tokens") or opt_int(body, "max_tokens"),
        stop=stops(body.get("stop"), "stop"),
        seed=opt_int(body, "seed", -(2**63), 2**63),
        response_format=obj(rf, "response_format") if rf is not None else None,
        reasoning=Reasoning(effort=effort) if effort else None,  # type: ignore[arg-type]
        n=opt_int(body, "n", 1, 128) or 1,
        stream=bool(opt_bool(body, "stream")),
        user=opt_str(body, "user"),
        metadata={str(k): str(v) for k, v in obj(meta, "metadata").items()} if meta is not None else {},
        extra={k: v for k, v in body.items() if k not in _KNOWN},
    )


def include_usage(body: Mapping[str, Any]) -> bool:
    opts = body.get("stream_options")
    return isinstance(opts, dict) and opts.get("include_usage") is True


# A message that is only a role and a string (most of every conversation): its Message directly.
_PLAIN_ROLES = {"user": "user", "system": "system", "developer": "system", "assistant": "assistant"}


def _message(raw: Any, i: int) -> Message:
    if type(raw) is dict and len(raw) == 2:
        content, role = raw.get("content"), raw.get("role")
        if type(content) is str and type(role) is str and role in _PLAIN_ROLES:
            return Message(_PLAIN_ROLES[role], content)  # type: ignore[arg-type]
    return _checked_message(raw, f"messages.{i}")


def _checked_message(raw: Any, path: str) -> Message:
    m = obj(raw, path)
    role = string(m.get("role"), f"{path}.role")
    content = m.get("content")
    if role in ("system", "developer"):
        return Message(role="system", content=_content(content, f"{path}.content", text_only=True))
    if role == "user":
        if content is None:
            bad(f"{path}.content", "missing required field")
        return Message(role="user", content=_content(content, f"{path}.content"), name=opt_str(m, "name", path + "."))
    if role == "assistant":
        calls = tuple(_tool_call(c, f"{path}.tool_calls.{j}") for j, c in enumerate(lst(m.get("tool_calls") or [], f"{path}.tool_calls")))
        text = _content(content, f"{path}.content", text_only=True) if content is not None else None
        reasoning = m.get("reasoning_content")
        return Message(role="assistant", content=text, tool_calls=calls,
                       reasoning=reasoning if isinstance(reasoning, str) else None)
    if role == "tool":
        call_id = string(m.get("tool_call_id"), f"{path}.tool_call_id")
        return Message.tool(call_id, _content(content if content is not None else "", f"{path}.content") or "")
    bad(f"{path}.role", f"must be one of system, developer, user, assistant, tool; got {role!r}")


def _content(raw: Any, path: str, *, text_only: bool = False) -> str | tuple[Part, ...] | None:
    if raw is None:
        return None
    if isinstance(raw, str):
        return raw
    parts = tuple(_part(p, f"{path}.{i}") for i, p in enumerate(lst(raw, path)))
    if text_only:
        return "".join(p.text for p in parts if isinstance(p, TextPart))
    return parts


def _part(raw: Any, path: str) -> Part:
    p = obj(raw, path)
    kind = p.get("type")
    if kind == "text":
        return TextPart(string(p.get("text"), f"{path}.text"))
    if kind == "image_url":
        img = p.get("image_url")
        url = string(img.get("url") if isinstance(img, dict) else img, f"{path}.image_url.url")
        detail = img.get("detail") if isinstance(img, dict) else None
        return image_from_url(url, detail if isinstance(detail, str) else None)
    if kind == "file":
        f = obj(p.get("file"), f"{path}.file")
        data = f.get("file_data")
        if isinstance(data, str) and data.startswith("data:"):
            media, _, b64 = data[5:].partition(";base64,")
            return DocumentPart(data=b64, media_type=media or None, name=f.get("filename"))
        return DocumentPart(data=data if isinstance(data, str) else None, name=f.get("filename"))
    bad(f"{path}.type", f"unsupported content part type {kind!r}; use text, image_url or file")


def image_from_url(url: str, detail: str | None = None) -> ImagePart:
    """A data: URL becomes inline base64 so every provider can take it; others stay URLs."""
    if url.startswith("data:"):
        media, sep, b64 = url[5:].partition(";base64,")
        if sep:
            return ImagePart(data=b64, media_type=media or "image/png", detail=detail)
    return ImagePart(url=url, detail=detail)


def _tool_call(raw: Any, path: str) -> ToolCall:
    c = obj(raw, path)
    fn = obj(c.get("function"), f"{path}.function")
    args = fn.get("arguments", "{}")
    if not isinstance(args, str):
        args = orjson.dumps(args).decode()
    return ToolCall(id=string(c.get("id"), f"{path}.id"), name=string(fn.get("name"), f"{path}.function.name"),
                    arguments=args)


def _tools(raw: Any) -> tuple[Tool, ...]:
    if raw is None:
        return ()
    out = []
    for i, t in enumerate(lst(raw, "tools")):
        t = obj(t, f"tools.{i}")
        fn = obj(t.get("function"), f"tools.{i}.function")
        params = fn.get("parameters")
        out.append(Tool(
            name=string(fn.get("name"), f"tools.{i}.function.name"),
            description=opt_str(fn, "description", f"tools.{i}.function."),
            parameters=obj(params, f"tools.{i}.function.parameters") if params is not None
            else {"type": "object", "properties": {}},
            strict=opt_bool(fn, "strict"),
        ))
    return tuple(out)


def _tool_choice(raw: Any) -> str | None:
    if raw is None:
        return None
    if isinstance(raw, str):
        if raw not in ("auto", "none", "required"):
            bad("tool_choice", f"must be auto, none, required or a function object; got {raw!r}")
        return raw
    fn = obj(obj(raw, "tool_choice").get("function"), "tool_choice.function")
    return string(fn.get("name"), "tool_choice.function.name")


# ----------------------------------------------------------------------------------- responses


def usage_json(usage: Usage | None, cost_usd: float | None) -> dict[str, Any]:
    u = usage or Usage()
    out: dict[str, Any] = {
        "prompt_tokens": u.input_tokens,
        "completion_tokens": u.output_tokens,
        "total_tokens": u.total_tokens,
        "prompt_tokens_details": {"cached_tokens": u.cache_read_tokens},
        "completion_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
    }
    if cost_usd is not None:
        out["cost"] = round(cost_usd, 10)
    return out


def _choice_json(c: Choice | ChatResult, index: int) -> dict[str, Any]:
    """One ``choices[]`` entry: a Choice, or a single-answer result as choice 0 (no Choice made)."""
    message: dict[str, Any] = {"role": "assistant", "content": c.text or None, "refusal": None}
    if c.tool_calls:
        message["tool_calls"] = [
            {"id": t.id, "type": "function", "function": {"name": t.name, "arguments": t.arguments}}
            for t in c.tool_calls
        ]
    elif not c.text:
        message["content"] = ""
    if c.reasoning:
        message["reasoning_content"] = c.reasoning
    return {"index": index, "message": message, "finish_reason": _finish(c.finish_reason, bool(c.tool_calls)),
            "logprobs": None}


def encode_result(result: ChatResult, model: str, request_id: str, cost_usd: float | None) -> bytes:
    return orjson.dumps({
        "id": _completion_id(result.id, request_id),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [_choice_json(c, c.index) for c in result.choices] if result.choices else [_choice_json(result, 0)],
        "usage": usage_json(result.usage, cost_usd),
    })


def encode_hit(result: ChatResult, model: str, request_id: str, cost_usd: float | None, entry: Rendered) -> bytes:
    """:func:`encode_result`'s bytes for an answer served to many callers (a cache entry's, a dedup
    flight's). Everything after ``model`` (choices and usage) depends only on the answer and the
    cost, so it is encoded once and kept on the entry; the id, ``created`` and model are written per response, as
    :func:`encode_result` writes them."""
    key = (_HIT_TAIL, cost_usd)
    tail = entry.rendered.get(key)
    if tail is None:
        choices = [_choice_json(c, c.index) for c in result.choices] if result.choices else [_choice_json(result, 0)]
        tail = entry.remember(key, b"," + orjson.dumps({"choices": choices, "usage": usage_json(result.usage, cost_usd)})[1:])
    return (b'{"id":' + orjson.dumps(_completion_id(result.id, request_id)) + b',"object":"chat.completion","created":'
            + str(int(time.time())).encode() + b',"model":' + orjson.dumps(model) + tail)


_HIT_TAIL = "openai.result_tail"


def _finish(reason: str, has_calls: bool) -> str:
    if has_calls:
        return "tool_calls"
    return "stop" if reason == "error" else reason


def _completion_id(upstream: str | None, request_id: str) -> str:
    return upstream if upstream and upstream.startswith("chatcmpl") else "chatcmpl-" + request_id.removeprefix("req_")


class StreamEncoder:
    """Encodes one answer's chunks as ``chat.completion.chunk`` SSE events.

    The first event of each choice (``n > 1``: one per ``choices[].index``) carries the role;
    tool-call deltas keep their index; ``finish_reason`` is ``tool_calls`` whenever calls were made;
    with ``include_usage`` a final event with empty ``choices`` carries the usage (and its cost) of
    the whole call, as OpenAI sends it.
    """

    __slots__ = ("_calls", "_created", "_finish", "_head", "_id", "_model", "_started", "include_usage", "usage")

    def __init__(self, model: str, request_id: str, include_usage: bool) -> None:
        self._model = model
        self._id = "chatcmpl-" + request_id.removeprefix("req_")
        self._created = int(time.time())
        # Per choice index: whether its role was sent, whether it made calls, its finish reason.
        self._started: set[int] = set()
        self._calls: set[int] = set()
        self._finish: dict[int, str] = {}
        self.include_usage = include_usage
        self.usage: Usage | None = None
        # The constant prefix of every event, serialised once per stream.
        self._head = (b'data: {"id":' + orjson.dumps(self._id) + b',"object":"chat.completion.chunk","created":'
                      + str(self._created).encode() + b',"model":' + orjson.dumps(model) + b",")

    @property
    def finish(self) -> str | None:
        """The first choice's finish reason, once known."""
        return self._finish.get(0)

    def _event(self, delta: dict[str, Any], finish: str | None = None, index: int = 0) -> bytes:
        choices = orjson.dumps([{"index": index, "delta": delta, "finish_reason": finish, "logprobs": None}])
        return self._head + b'"choices":' + choices + b"}\n\n"

    def chunk(self, c: Chunk) -> bytes:
        out = b""
        i = c.choice
        if i not in self._started:
            self._started.add(i)
            out += self._event({"role": "assistant", "content": ""}, index=i)
        if c.text and not (c.reasoning or c.tool_calls):
            # Most chunks: text alone. The same bytes as _event({"content": text}), without the dicts.
            out += (self._head + b'"choices":[{"index":' + str(i).encode() + b',"delta":{"content":'
                    + orjson.dumps(c.text) + b'},"finish_reason":null,"logprobs":null}]}\n\n')
            return self._after(c, i, out)
        delta: dict[str, Any] = {}
        if c.text:
            delta["content"] = c.text
        if c.reasoning:
            delta["reasoning_content"] = c.reasoning
        if c.tool_calls:
            self._calls.add(i)
            delta["tool_calls"] = [_call_delta(d) for d in c.tool_calls]
        if delta:
            out += self._event(delta, index=i)
        return self._after(c, i, out)

    def _after(self, c: Chunk, i: int, out: bytes) -> bytes:
        if c.usage is not None:
            self.usage = c.usage
        if c.finish_reason:
            self._finish[i] = "tool_calls" if i in self._calls else _finish(c.finish_reason, False)
        return out

    def end(self, cost_usd: float | None) -> bytes:
        out = b"" if self._started else self.chunk(Chunk())
        for i in sorted(self._started):
            out += self._event({}, self._finish.get(i) or ("tool_calls" if i in self._calls else "stop"), index=i)
        if self.include_usage:
            out += self._head + b'"choices":[],"usage":' + orjson.dumps(usage_json(self.usage, cost_usd)) + b"}\n\n"
        return out + b"data: [DONE]\n\n"


def _call_delta(d: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"index": d.index}
    if d.id:
        out["id"] = d.id
        out["type"] = "function"
    fn: dict[str, Any] = {"arguments": d.arguments}
    if d.name:
        fn["name"] = d.name
    out["function"] = fn
    return out


def error_event(body: Mapping[str, Any]) -> bytes:
    """An error after the stream started: OpenAI sends it as a data event with an ``error`` key."""
    return b"data: " + orjson.dumps(body) + b"\n\n"
