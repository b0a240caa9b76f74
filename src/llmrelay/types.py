"""The unified types every part of llmrelay speaks.

A request arrives in the OpenAI or the Anthropic shape, becomes a :class:`ChatRequest`, travels
through the pipeline, and each provider turns it into its own wire format. Answers come back as a
stream of :class:`Chunk` deltas (a non-streamed answer is one chunk that carries everything), which
``llmrelay.streaming.Assembler`` folds into a :class:`ChatResult`.

    >>> req = ChatRequest(model="fast", messages=(Message.user("Hello"),))
    >>> req.messages[0].text()
    'Hello'

Usage follows OpenAI's semantics, normalised once in each provider adapter: ``input_tokens``
*includes* cached reads and cache writes, ``output_tokens`` *includes* reasoning tokens.

This module imports nothing from the rest of the package.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, TypeAlias

Role: TypeAlias = Literal["system", "user", "assistant", "tool"]
FinishReason: TypeAlias = Literal["stop", "length", "tool_calls", "content_filter", "error"]


# ----------------------------------------------------------------------------------- content parts


@dataclass(frozen=True, slots=True)
class TextPart:
    text: str
    type: Literal["text"] = "text"
    # Provider-side prompt caching marker (Anthropic ``cache_control``); carried, not interpreted.
    cache_control: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class ImagePart:
    """An image given by URL, or inline as base64 ``data`` with its ``media_type``."""

    url: str | None = None
    data: str | None = None
    media_type: str | None = None
    detail: str | None = None
    type: Literal["image"] = "image"

    def data_url(self) -> str:
        if self.url:
            return self.url
        return f"data:{self.media_type or 'image/png'};base64,{self.data or ''}"


@dataclass(frozen=True, slots=True)
class DocumentPart:
    """A file (PDF, text...) given by URL or inline base64 ``data``."""

    url: str | None = None
    data: str | None = None
    media_type: str | None = None
    name: str | None = None
    type: Literal["document"] = "document"


Part: TypeAlias = TextPart | ImagePart | DocumentPart


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A complete tool call; ``arguments`` is the JSON text the model produced."""

    id: str
    name: str
    arguments: str = "{}"


@dataclass(frozen=True, slots=True)
class Message:
    role: Role
    # A plain string, or a sequence of parts (text, images, documents).
    content: str | Sequence[Part] | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    # For role == "tool": the call this message answers, and whether the tool failed.
    tool_call_id: str | None = None
    is_error: bool = False
    name: str | None = None
    # An assistant's reasoning as returned by the provider, with its signature when there is one
    # (Anthropic needs it back verbatim to continue a thinking conversation).
    reasoning: str | None = None
    reasoning_signature: str | None = None

    @staticmethod
    def system(text: str) -> Message:
        return Message(role="system", content=text)

    @staticmethod
    def user(content: str | Sequence[Part]) -> Message:
        return Message(role="user", content=content)

    @staticmethod
    def assistant(text: str | None = None, tool_calls: Sequence[ToolCall] = ()) -> Message:
        return Message(role="assistant", content=text, tool_calls=tuple(tool_calls))

    @staticmethod
    def tool(tool_call_id: str, content: str | Sequence[Part], is_error: bool = False) -> Message:
        return Message(role="tool", content=content, tool_call_id=tool_call_id, is_error=is_error)

    def text(self) -> str:
        """The message's text, parts joined; non-text parts are skipped."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(p.text for p in self.content if isinstance(p, TextPart))


@dataclass(frozen=True, slots=True)
class Tool:
    """A function the model may call; ``parameters`` is a JSON Schema object."""

    name: str
    description: str | None = None
    parameters: Mapping[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})
    strict: bool | None = None


# "auto" | "none" | "required" | the name of one tool to force.
ToolChoice: TypeAlias = str


@dataclass(frozen=True, slots=True)
class Reasoning:
    """Extended thinking: an effort level (OpenAI style) or a token budget (Anthropic/Gemini)."""

    effort: Literal["minimal", "low", "medium", "high", "xhigh"] | None = None
    budget_tokens: int | None = None
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class RawBody:
    """A request body exactly as the caller sent it, and its parsed form (read-only), so an
    adapter for the same wire format can forward the bytes instead of re-encoding the request.

    >>> RawBody(b'{"model":"fast","messages":[]}', {"model": "fast", "messages": []}).data[:9]
    b'{"model":'
    """

    data: bytes
    parsed: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ChatRequest:
    model: str
    messages: tuple[Message, ...]
    tools: tuple[Tool, ...] = ()
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None
    # {"type": "text" | "json_object" | "json_schema", "json_schema": {...}} (OpenAI's shape).
    response_format: Mapping[str, Any] | None = None
    reasoning: Reasoning | None = None
    n: int = 1
    stream: bool = False
    user: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    # Provider-specific fields passed through untouched (e.g. OpenAI ``logit_bias``).
    extra: Mapping[str, Any] = field(default_factory=dict)
    # The caller's body as received, set by an edge on the request it built (see RawBody). Not an
    # __init__ argument, so ``dataclasses.replace`` -- how a layer changes a request -- drops it:
    # a changed request can never be forwarded as the caller's bytes. Only with_model keeps it.
    raw: RawBody | None = field(default=None, init=False, compare=False, hash=False, repr=False)

    def with_model(self, model: str) -> ChatRequest:
        # A field-by-field copy (raw included): the router calls this on every attempt, and
        # ``dataclasses.replace`` costs twice as much (it rebuilds kwargs and runs __init__).
        # The slots' own descriptors, all values read at once: ~2.3 instead of ~3.5 us.
        new = object.__new__(ChatRequest)
        for put, value in zip(_CHAT_REQUEST_SETTERS, _chat_request_values(self), strict=True):
            put(new, value)
        _set_model(new, model)
        return new

    def attach_raw(self, raw: RawBody) -> ChatRequest:
        """This request, carrying the body it was decoded from (an edge calls it once, on the
        request it just built, before anyone else holds it)."""
        object.__setattr__(self, "raw", raw)
        return self

    @property
    def deterministic(self) -> bool:
        """Whether two identical requests may be expected to give the same answer."""
        return self.n == 1 and (self.temperature == 0 or self.seed is not None)


_CHAT_REQUEST_SLOTS: tuple[str, ...] = ChatRequest.__slots__  # type: ignore[attr-defined]
_chat_request_values = operator.attrgetter(*_CHAT_REQUEST_SLOTS)
_CHAT_REQUEST_SETTERS: tuple[Callable[[ChatRequest, Any], None], ...] = tuple(
    getattr(ChatRequest, name).__set__ for name in _CHAT_REQUEST_SLOTS
)
_set_model: Callable[[ChatRequest, Any], None] = ChatRequest.model.__set__  # type: ignore[misc, attr-defined]


# ------------------------------------------------------------------------------------------ usage


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts with OpenAI's semantics.

    ``input_tokens`` includes ``cache_read_tokens`` and ``cache_write_tokens``; ``output_tokens``
    includes ``reasoning_tokens``. ``cache_write_1h_tokens`` is the part of the cache writes that
    used the one-hour TTL (Anthropic prices it differently).
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @property
    def uncached_input_tokens(self) -> int:
        return max(0, self.input_tokens - self.cache_read_tokens - self.cache_write_tokens)

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cache_read_tokens + other.cache_read_tokens,
            self.cache_write_tokens + other.cache_write_tokens,
            self.cache_write_1h_tokens + other.cache_write_1h_tokens,
            self.reasoning_tokens + other.reasoning_tokens,
        )


# ------------------------------------------------------------------------------- streaming deltas


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A piece of a tool call. ``index`` tells interleaved calls apart; ``id`` and ``name`` come
    with the first piece of a call, ``arguments`` is a fragment to append."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass(frozen=True, slots=True)
class Chunk:
    """One step of an answer. Every field is optional; a chunk carries only what changed.

    A provider's stream ends with a chunk that has ``finish_reason`` and, when known, ``usage``
    (which is cumulative for the whole answer, not a delta).
    """

    text: str = ""
    reasoning: str = ""
    reasoning_signature: str | None = None
    tool_calls: tuple[ToolCallDelta, ...] = ()
    finish_reason: FinishReason | None = None
    usage: Usage | None = None
    # The upstream's id and model name for the answer, given on the first chunk.
    id: str | None = None
    model: str | None = None
    # Which of the request's ``n`` answers this delta belongs to (OpenAI's ``choices[].index``).
    # ``usage`` is the whole call's, on the last chunk, whatever its choice.
    choice: int = 0


@dataclass(frozen=True, slots=True)
class Choice:
    """One of several answers to a request with ``n > 1``."""

    index: int
    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: FinishReason = "stop"
    reasoning: str = ""
    reasoning_signature: str | None = None

    def to_chunk(self) -> Chunk:
        return Chunk(
            choice=self.index,
            text=self.text,
            reasoning=self.reasoning,
            reasoning_signature=self.reasoning_signature,
            tool_calls=tuple(
                ToolCallDelta(index=i, id=c.id, name=c.name, arguments=c.arguments) for i, c in enumerate(self.tool_calls)
            ),
            finish_reason=self.finish_reason,
        )


@dataclass(frozen=True, slots=True)
class ChatResult:
    id: str
    model: str
    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: FinishReason = "stop"
    usage: Usage = field(default_factory=Usage)
    reasoning: str = ""
    reasoning_signature: str | None = None
    # The provider (config name) that answered; filled by the router.
    provider: str | None = None
    # Every answer of a request with ``n > 1``, by index; the first is the fields above. Empty
    # for a single answer (see all_choices).
    choices: tuple[Choice, ...] = ()

    def all_choices(self) -> tuple[Choice, ...]:
        """The answers by index: ``choices``, or the one answer this result is."""
        if self.choices:
            return self.choices
        return (Choice(0, self.text, self.tool_calls, self.finish_reason, self.reasoning, self.reasoning_signature),)

    def to_chunks(self) -> tuple[Chunk, ...]:
        """The result as one chunk (one per answer when ``n > 1``, the first answer's last, with
        the usage), so a non-streamed answer flows through streaming layers."""
        if not self.choices and not self.tool_calls:  # one answer, no calls: nearly every result
            return (Chunk(self.text, self.reasoning, self.reasoning_signature, (), self.finish_reason, self.usage,
                          self.id, self.model),)
        others = tuple(replace(c.to_chunk(), id=self.id, model=self.model) for c in self.choices if c.index != 0)
        return (
            *others,
            Chunk(
                id=self.id,
                model=self.model,
                text=self.text,
                reasoning=self.reasoning,
                reasoning_signature=self.reasoning_signature,
                tool_calls=tuple(
                    ToolCallDelta(index=i, id=c.id, name=c.name, arguments=c.arguments)
                    for i, c in enumerate(self.tool_calls)
                ),
                finish_reason=self.finish_reason,
                usage=self.usage,
            ),
        )


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """A model as listed by a provider or by the gateway."""

    id: str
    provider: str | None = None
    context_window: int | None = None
    max_output_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class EmbeddingRequest:
    model: str
    input: tuple[str, ...]
    dimensions: int | None = None
    user: str | None = None


@dataclass(frozen=True, slots=True)
class EmbeddingResult:
    model: str
    vectors: tuple[tuple[float, ...], ...]
    usage: Usage = field(default_factory=Usage)
    provider: str | None = None
