"""The provider-neutral brain of the simulator: a normalised prompt in, a deterministic answer out.

Every route turns its wire request into a :class:`Prompt` and renders the :class:`Answer` back in its
own wire format, so all four APIs answer the same conversation with the same words.

Token counting (documented because tests and benchmarks compare figures): a token is a run of word
characters or a single punctuation mark (``\\w+|[^\\w\\s]``). A prompt costs the tokens of all its
texts, plus 3 per message, 85 per image and the tokens of the tool definitions' JSON. An answer costs
the tokens of its text, its reasoning and its tool calls' names and JSON arguments.

    >>> p = Prompt(texts=("Hello there",), last_user="Hello there", n_messages=1)
    >>> a = compose(p, Options())
    >>> a.text
    'This is a simulated answer to: Hello there'
    >>> a.input_tokens, a.output_tokens
    (5, 9)
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from .schema_args import example_for

_TOKEN_RE = re.compile(r"\w+|[^\w\s]")
_FILLER = ["gateway", "relay", "stream", "token", "model", "answer", "latency", "budget", "cache", "request", "route", "deployment", "provider", "usage", "signal", "packet", "river", "mountain", "lantern", "harbor", "meadow", "copper", "garden", "silver", "orbit"]
IMAGE_TOKENS = 85
MESSAGE_TOKENS = 3


def count_tokens(text: str) -> int:
    return len(_TOKEN_RE.findall(text))


@dataclass(frozen=True, slots=True)
class ToolSpec:
    name: str
    schema: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Prompt:
    """What a request asks, stripped of its wire format.

    ``tool_choice`` is ``"auto"``, ``"none"``, ``"required"`` or the name of a forced tool.
    ``tool_results`` holds the results given after the last assistant turn (empty on a first turn).
    ``prefill`` is the text of a final assistant message that the answer must continue.
    """

    texts: tuple[str, ...] = ()
    last_user: str = ""
    n_messages: int = 0
    images: int = 0
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: str = "auto"
    tool_results: tuple[str, ...] = ()
    reasoning: bool = False
    prefill: str = ""
    max_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class Options:
    """Per-request knobs, from the ``x-sim-*`` headers or the model-name suffix."""

    words: int | None = None
    chunks: int | None = None
    tool_calls: int = 1
    cached: int = 0


@dataclass(frozen=True, slots=True)
class Call:
    id: str
    name: str
    arguments: dict[str, Any]

    @property
    def arguments_json(self) -> str:
        return orjson.dumps(self.arguments).decode()


@dataclass(frozen=True, slots=True)
class Answer:
    text: str
    pieces: tuple[str, ...]
    reasoning: str
    reasoning_pieces: tuple[str, ...]
    calls: tuple[Call, ...]
    input_tokens: int
    output_tokens: int
    """Includes reasoning tokens (OpenAI semantics)."""
    reasoning_tokens: int
    cached_tokens: int
    finish: str
    """``stop``, ``length`` or ``tool_calls``; each route maps it to its own name."""
    digest: str

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


def prompt_tokens(prompt: Prompt) -> int:
    tools = sum(count_tokens(t.name) + count_tokens(orjson.dumps(t.schema).decode()) for t in prompt.tools)
    texts = sum(count_tokens(t) for t in prompt.texts)
    return texts + MESSAGE_TOKENS * prompt.n_messages + IMAGE_TOKENS * prompt.images + tools


def digest_of(prompt: Prompt) -> str:
    """A stable hash of the conversation (the prefill excluded: a continuation is the same answer)."""
    h = hashlib.blake2b(digest_size=16)
    for t in prompt.texts:
        h.update(t.encode())
        h.update(b"\x00")
    h.update(str(prompt.images).encode())
    return h.hexdigest()


def compose(prompt: Prompt, opts: Options) -> Answer:
    digest = digest_of(prompt)
    input_tokens = prompt_tokens(prompt)
    cached = max(0, min(opts.cached, input_tokens))
    reasoning = _reasoning_text(prompt) if prompt.reasoning else ""
    calls = _calls(prompt, opts, digest)
    # Real models usually call a tool without a text preamble; an empty text keeps parsers honest.
    text, finish = ("", "tool_calls") if calls else _text(prompt, opts, digest, count_tokens(reasoning))
    reasoning_tokens = count_tokens(reasoning)
    call_tokens = sum(count_tokens(c.name) + count_tokens(c.arguments_json) for c in calls)
    return Answer(
        text=text,
        pieces=split_pieces(text, opts.chunks),
        reasoning=reasoning,
        reasoning_pieces=split_pieces(reasoning, None),
        calls=calls,
        input_tokens=input_tokens,
        output_tokens=count_tokens(text) + reasoning_tokens + call_tokens,
        reasoning_tokens=reasoning_tokens,
        cached_tokens=cached,
        finish=finish,
        digest=digest,
    )


def _reasoning_text(prompt: Prompt) -> str:
    topic = " ".join(prompt.last_user.split()[:8]) or "nothing in particular"
    return f"The user asks about {topic}. A short, direct answer is best."


def _full_text(prompt: Prompt, opts: Options, digest: str) -> str:
    head = " ".join(prompt.last_user.split()[:8])
    words = f"This is a simulated answer to: {head}".split()
    if prompt.images:
        words += f"I see {prompt.images} image{'s' if prompt.images != 1 else ''}.".split()
    if prompt.tool_results:
        result = " ".join(" ".join(prompt.tool_results).split()[:12])
        words = f"The tool returned: {result}.".split() + words
    if opts.words is not None:
        seed = int(digest[:8], 16)
        while len(words) < opts.words:
            words.append(_FILLER[(seed + len(words) * 7) % len(_FILLER)])
        words = words[: max(opts.words, 1)]
    return " ".join(words)


def _text(prompt: Prompt, opts: Options, digest: str, reasoning_tokens: int) -> tuple[str, str]:
    full = _full_text(prompt, opts, digest)
    text = full
    if prompt.prefill:
        text = full[len(prompt.prefill):] if full.startswith(prompt.prefill) else " " + full
    if prompt.max_tokens is None or count_tokens(text) + reasoning_tokens <= prompt.max_tokens:
        return text, "stop"
    budget = max(prompt.max_tokens - reasoning_tokens, 0)
    kept: list[str] = []
    for word in text.split(" "):
        if count_tokens(" ".join([*kept, word])) > budget:
            break
        kept.append(word)
    return " ".join(kept), "length"


def _calls(prompt: Prompt, opts: Options, digest: str) -> tuple[Call, ...]:
    if not prompt.tools or prompt.tool_choice == "none" or prompt.tool_results:
        return ()
    by_name = {t.name: t for t in prompt.tools}
    forced = by_name.get(prompt.tool_choice)
    calls = []
    for i in range(max(opts.tool_calls, 1)):
        tool = forced or prompt.tools[i % len(prompt.tools)]
        args = example_for(tool.schema, hint=tool.name)
        call_id = hashlib.blake2b(f"{digest}:{i}".encode(), digest_size=12).hexdigest()
        calls.append(Call(id=call_id, name=tool.name, arguments=args if isinstance(args, dict) else {}))
    return tuple(calls)


def split_pieces(text: str, chunks: int | None) -> tuple[str, ...]:
    """Split ``text`` into stream pieces: one per word by default (at most 16), or ``chunks`` pieces."""
    if not text:
        return ()
    words = text.split(" ")
    tokens = [w if i == 0 else " " + w for i, w in enumerate(words)]
    n = min(len(tokens), 16) if chunks is None else max(chunks, 1)
    if n >= len(tokens):
        if chunks is not None and n > len(tokens):
            return _split_chars(text, n)
        return tuple(tokens)
    size, extra = divmod(len(tokens), n)
    out, pos = [], 0
    for i in range(n):
        step = size + (1 if i < extra else 0)
        out.append("".join(tokens[pos : pos + step]))
        pos += step
    return tuple(out)


def _split_chars(text: str, n: int) -> tuple[str, ...]:
    # More chunks than words asked: cut by characters so the count is honoured exactly when possible.
    n = min(n, len(text))
    size, extra = divmod(len(text), n)
    out, pos = [], 0
    for i in range(n):
        step = size + (1 if i < extra else 0)
        out.append(text[pos : pos + step])
        pos += step
    return tuple(out)
