"""Canonical request hashing: the key the cache and the dedup table share.

Two requests get the same key when the upstream would be asked the same question: the same model
group, messages, tools and every parameter that changes the answer. What does not change the answer
is left out: ``stream`` (a streamed and a non-streamed call share an entry), ``user`` and
``metadata``. The caller's identity enters only through ``scope`` (``cache.scope: key|team``).

    >>> from llmrelay.types import ChatRequest, Message
    >>> a = ChatRequest(model="fast", messages=(Message.user("Hi"),), temperature=0)
    >>> b = ChatRequest(model="fast", messages=(Message.user("Hi"),), temperature=0, stream=True)
    >>> request_key(a) == request_key(b)
    True

The hot path is one ``orjson.dumps`` of a tuple (orjson serialises the frozen dataclasses natively,
in C) and one blake2b. Dict key order is kept, not sorted: JSON-schema property order can change
what a model writes, so two schemas that differ only in order are different questions.
"""

from __future__ import annotations

from dataclasses import fields
from hashlib import blake2b
from operator import attrgetter
from typing import Any

import orjson

from ..types import ChatRequest, Message

_OPTS = orjson.OPT_NON_STR_KEYS
# Bumped when the canonical form changes, so old persistent entries are never misread.
# v2: messages as tuples of their fields (v1 let orjson walk the slotted dataclasses, ~2x slower).
_VERSION = b"v2"
# A message's fields in declaration order, as one tuple (attrgetter builds it in C). Every field
# is part of the question, so a field added to Message is keyed without a change here.
_MESSAGE = attrgetter(*(f.name for f in fields(Message)))


def _default(obj: Any) -> Any:
    # Anything orjson cannot encode natively (a Mapping that is not a dict, a set...): its repr is
    # stable enough to key on, and refusing would make the request uncacheable for no reason.
    if hasattr(obj, "items"):
        return dict(obj.items())
    if isinstance(obj, (set, frozenset)):
        return sorted(map(repr, obj))
    return repr(obj)


def _params(r: ChatRequest) -> tuple[Any, ...]:
    return (r.tools, r.tool_choice, r.parallel_tool_calls, r.temperature, r.top_p, r.top_k,
            r.max_tokens, r.stop, r.seed, r.response_format, r.reasoning, r.n, r.extra)


def request_key(request: ChatRequest, scope: str = "") -> str:
    """The hex digest naming ``request`` (within ``scope``, e.g. a key id when scoped per key)."""
    blob = orjson.dumps((request.model, scope, tuple(map(_MESSAGE, request.messages)), _params(request)),
                        default=_default, option=_OPTS)
    return blake2b(_VERSION + blob, digest_size=16).hexdigest()


def context_key(request: ChatRequest, scope: str = "") -> tuple[str, str]:
    """For the semantic cache: (a key for everything but the last user message's text, that text).

    Requests whose context keys match differ at most in how the last question is worded, so only
    they may share a semantically matched answer.
    """
    msgs = request.messages
    last = next((i for i in range(len(msgs) - 1, -1, -1) if msgs[i].role == "user"), None)
    text = msgs[last].text() if last is not None else ""
    canonical = tuple(map(_MESSAGE, msgs))
    head = canonical if last is None else (*canonical[:last], msgs[last].role, *canonical[last + 1:])
    blob = orjson.dumps((request.model, scope, head, _params(request)), default=_default, option=_OPTS)
    return blake2b(b"ctx" + _VERSION + blob, digest_size=16).hexdigest(), text
