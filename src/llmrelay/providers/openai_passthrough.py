"""DESIGN.md's fast path: forward the caller's OpenAI body as it came, with only the model replaced.

When the OpenAI edge decoded a request (it carries :class:`~llmrelay.types.RawBody`) and no layer
changed it (a layer that changes a request builds a new one with ``dataclasses.replace``, which drops
``raw``; only ``with_model`` keeps it), the bytes the caller sent are what an OpenAI-compatible
server wants, except for the model name, and for streams ``stream_options.include_usage``, which the
gateway needs for accounting. Re-encoding the request would only cost CPU.

    >>> from llmrelay.types import ChatRequest, Message, RawBody
    >>> data = b'{"model": "fast", "messages": [{"role": "user", "content": "Hi"}]}'
    >>> req = ChatRequest(model="fast", messages=(Message.user("Hi"),)).attach_raw(
    ...     RawBody(data, {"model": "fast", "messages": [{"role": "user", "content": "Hi"}]}))
    >>> forwarded_body(req.with_model("gpt-4o-mini"), stream=False, opts=WireOptions())
    b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]}'

Passthrough means fields the gateway does not know are forwarded too, as they were (the re-encoding
path forwards unknown top-level fields as well, but rebuilds messages from what it understood). The
fast path is refused -- ``None``, and the adapter re-encodes the request -- whenever re-encoding would send
something different from the caller's body: the dialect translates a field (``max_tokens`` for a
reasoning model, ``top_k``, OpenRouter-style reasoning, sampling knobs a reasoning model rejects),
the body has fields the gateway consumes (``metadata``), an assistant message echoes reasoning, a
``developer`` role, tool results with images, ``stream`` or ``stream_options`` disagreeing with the
call. Bodies over ``SPLICE_MAX_BYTES``, and bodies whose model key cannot be found unambiguously
in the bytes (a nested "model" key, a key spelled with escapes), are sent as orjson writes the
parsed body back with the new model: the caller's fields and values, not necessarily their bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from ..types import ChatRequest, Message, RawBody, TextPart
from .openai_wire import WireOptions, is_reasoning_model, max_tokens_field

_MODEL = b'"model"'
# Up to this size the model is replaced in the caller's bytes (two scans of the body, ~2 GB/s);
# above it orjson writes the parsed body back, which is faster than the scans.
SPLICE_MAX_BYTES = 16 * 1024
_SPACE = frozenset(b" \t\r\n")
_USAGE = b'"stream_options":{"include_usage":true},'
_MAX_FIELDS = frozenset({"max_tokens", "max_completion_tokens"})


def forwarded_body(request: ChatRequest, *, stream: bool, opts: WireOptions) -> bytes | None:
    """The caller's bytes with ``request.model`` in place of theirs, or None when not safe."""
    raw = request.raw
    if raw is None or not _same_meaning(request, raw.parsed, stream, opts):
        return None
    add_usage = stream and opts.stream_usage and "stream_options" not in raw.parsed
    data = _replace_model(raw, request.model) if len(raw.data) <= SPLICE_MAX_BYTES else None
    if data is None:
        # The caller's parsed body written back: the same fields and values in the same order (only
        # whitespace and number spelling may differ), cheaper than searching a large body's bytes.
        body = {**raw.parsed, "model": request.model}
        return orjson.dumps({"stream_options": {"include_usage": True}, **body} if add_usage else body)
    if add_usage:
        brace = data.find(b"{")  # the body is an object with at least "model": never empty
        data = data[: brace + 1] + _USAGE + data[brace + 1:]
    return data


def _same_meaning(request: ChatRequest, body: Mapping[str, Any], stream: bool, opts: WireOptions) -> bool:
    """Whether re-encoding ``request`` would send upstream what the caller's body says."""
    if bool(body.get("stream")) != stream or "metadata" in body:
        return False
    if "stream_options" in body and not _usage_asked(body, stream, opts):
        return False
    if "top_k" in body and not opts.top_k:
        return False
    if "reasoning_effort" in body and opts.reasoning_style != "effort":
        return False
    if "parallel_tool_calls" in body and not request.tools:
        return False
    if is_reasoning_model(request.model) and opts.drop_unsupported and ("temperature" in body or "top_p" in body):
        return False
    if ("max_tokens" in body or "max_completion_tokens" in body) and _MAX_FIELDS.intersection(body) != {
            max_tokens_field(request.model, opts)}:
        return False
    for m in request.messages:
        if not _plain(m):
            return False
    # Re-encoding turns "developer" into "system" (not every compatible server knows the role).
    return all(not isinstance(m, dict) or m.get("role") != "developer" for m in body.get("messages") or ())


def _usage_asked(body: Mapping[str, Any], stream: bool, opts: WireOptions) -> bool:
    so = body["stream_options"]
    return stream and opts.stream_usage and isinstance(so, dict) and so.get("include_usage") is True


def _plain(m: Message) -> bool:
    """A message whose wire form is the one the caller sent (no reasoning echo, no image split)."""
    if m.reasoning is not None:
        return False
    if m.role == "tool" and not (m.content is None or isinstance(m.content, str)):
        return all(isinstance(p, TextPart) for p in m.content)
    return True


def _replace_model(raw: RawBody, model: str) -> bytes | None:
    data = raw.data
    # A key written with \\u escapes ("\\u006dodel") would hide the real one from the search below
    # (and a nested key with the same value could be replaced instead); every letter of "model" is
    # \\u006x, so one test rules that out.
    if b"\\u006" in data:
        return None
    start = _value_offset(data)
    old = orjson.dumps(raw.parsed.get("model"))
    if start is None or data[start: start + len(old)] != old:
        return None
    if model == raw.parsed.get("model"):
        return data
    return data[:start] + orjson.dumps(model) + data[start + len(old):]


def _value_offset(data: bytes) -> int | None:
    """Where the value of the one key spelled "model" starts; None when there are several (a tool's
    schema may have one: not worth a full JSON scan to tell which is top-level) or none."""
    found = None
    pos = data.find(_MODEL)
    while pos != -1:
        # Inside a string a quote is escaped, so a match is a key, or a "model" string value.
        end = _skip_space(data, pos + len(_MODEL))
        if end < len(data) and data[end] == 0x3A and (pos == 0 or data[pos - 1] != 0x5C):  # ':' and no '\\'
            if found is not None:
                return None
            found = _skip_space(data, end + 1)
        pos = data.find(_MODEL, pos + 1)
    return found


def _skip_space(data: bytes, i: int) -> int:
    while i < len(data) and data[i] in _SPACE:
        i += 1
    return i
