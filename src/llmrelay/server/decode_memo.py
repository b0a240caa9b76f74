"""Chat requests remembered by the caller's bytes, at the OpenAI edge.

A hot prompt sent again byte for byte (the cache hit and the joined duplicate are exactly that)
decodes to the same request: the memo skips ``orjson.loads`` and :func:`.openai_codec.decode_chat`
(~15 us of a ~170 us cache hit). The remembered request and its parsed body are then shared by
every request that sends those bytes, so only a request that is immutable all the way down is
remembered: no tools (their schemas are dicts), no ``response_format``, no metadata, no unknown
fields, every message's content a string. Its empty ``metadata``/``extra`` and its parsed body
(:class:`~llmrelay.types.RawBody`, read by the pass-through adapter) are read-only copies, so a
layer or adapter that tried to change one in place would fail instead of changing the next
caller's request. Layers change a request with ``dataclasses.replace`` (a new object), as before.

A body is remembered on its second sighting, so traffic of unique prompts pays one dict lookup
and insert per request, not the read-only copy. Hashing a body costs ~1 us per KB, so one over
1 KB is looked up by its length and ends and then compared whole (memcmp, ~20x cheaper than the
hash): a long unique body costs as little as a short one.

    memo = DecodeMemo()
    request, usage = memo.decode(data)    # the same as decode_chat(orjson.loads(data)) + attach_raw
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from copy import deepcopy
from dataclasses import replace
from typing import Any, NoReturn

import orjson

from ..errors import InvalidRequestError
from ..types import ChatRequest, RawBody
from .openai_codec import decode_chat, include_usage

# Bounds: how many bodies are remembered (seen once or decoded) and the largest one (bytes).
_MAX_BODIES = 512
_MAX_BODY = 16 << 10
# Bodies up to this size are their own dict key; a longer one's key is its length and ends.
_HASHED = 1 << 10
_ENDS = 64


def _read_only(*_: Any, **__: Any) -> NoReturn:
    raise TypeError("this request body is shared by every request that sent the same bytes: copy it to change it")


class FrozenDict(dict[str, Any]):
    """A dict that refuses changes (still a dict: orjson, ``{**d}``, ``isinstance`` and ``==`` work).
    A copy (``copy``, ``deepcopy``, pickle) is a plain dict: it is made to be changed."""

    __slots__ = ()
    __setitem__ = __delitem__ = update = pop = popitem = setdefault = clear = __ior__ = _read_only  # type: ignore[assignment]

    def __copy__(self) -> dict[str, Any]:
        return dict(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[str, Any]:
        return {k: deepcopy(v, memo) for k, v in self.items()}

    def __reduce__(self) -> tuple[Any, ...]:
        return (dict, (dict(self),))


class FrozenList(list[Any]):
    """A list that refuses changes (still a list for readers and orjson); copies are plain lists."""

    __slots__ = ()
    __setitem__ = __delitem__ = append = extend = insert = pop = remove = clear = sort = reverse = _read_only  # type: ignore[assignment]
    __iadd__ = __imul__ = _read_only  # type: ignore[assignment]

    def __copy__(self) -> list[Any]:
        return list(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> list[Any]:
        return [deepcopy(v, memo) for v in self]

    def __reduce__(self) -> tuple[Any, ...]:
        return (list, (list(self),))


EMPTY: FrozenDict = FrozenDict()
_UNSEEN: Any = object()
_State = tuple[ChatRequest, bool] | bool | None


def frozen(value: Any) -> Any:
    """``value`` (parsed JSON) with every dict and list read-only."""
    if type(value) is dict:
        return FrozenDict({k: frozen(v) for k, v in value.items()})
    if type(value) is list:
        return FrozenList([frozen(v) for v in value])
    return value


def shareable(request: ChatRequest) -> bool:
    """Whether ``request`` holds no mutable container but its (empty) metadata and extra."""
    if request.tools or request.response_format is not None or request.metadata or request.extra:
        return False
    return all(m.content is None or type(m.content) is str for m in request.messages)


def parse(data: bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequestError(f"the request body is not valid JSON ({exc})") from None


class DecodeMemo:
    """body bytes -> (request with its RawBody, include_usage); bounded, cleared when full."""

    __slots__ = ("_seen", "max_bodies", "max_body")

    def __init__(self, max_bodies: int = _MAX_BODIES, max_body: int = _MAX_BODY) -> None:
        self.max_bodies, self.max_body = max_bodies, max_body
        # slot -> (the body, its state). State None: seen once (not yet worth the read-only copy);
        # False: not shareable; else the shared (request, include_usage).
        self._seen: dict[Hashable, tuple[bytes, _State]] = {}

    def decode(self, data: bytes, decode: Callable[[Any], ChatRequest] = decode_chat) -> tuple[ChatRequest, bool]:
        """The request ``data`` decodes to (raises as ``decode_chat`` does) and whether the caller
        asked for usage in the stream."""
        if len(data) > self.max_body:
            return _fresh(data, decode)
        slot = data if len(data) <= _HASHED else (len(data), data[:_ENDS], data[-_ENDS:])
        held = self._seen.get(slot)
        state = held[1] if held is not None and (held[0] is data or held[0] == data) else _UNSEEN
        if type(state) is tuple:
            return state
        if state is _UNSEEN:
            self._remember(slot, data, None)
            return _fresh(data, decode)
        if state is False:
            return _fresh(data, decode)
        body = parse(data)
        request = decode(body)
        if not shareable(request):
            self._remember(slot, data, False)
            return request.attach_raw(RawBody(data, body)), include_usage(body)
        shared = frozen(body)
        entry = (replace(request, metadata=EMPTY, extra=EMPTY).attach_raw(RawBody(data, shared)), include_usage(shared))
        self._remember(slot, data, entry)
        return entry

    def _remember(self, slot: Hashable, data: bytes, state: _State) -> None:
        if len(self._seen) >= self.max_bodies and slot not in self._seen:
            self._seen.clear()
        self._seen[slot] = (data, state)

    def __len__(self) -> int:
        return len(self._seen)


def _fresh(data: bytes, decode: Callable[[Any], ChatRequest]) -> tuple[ChatRequest, bool]:
    body = parse(data)
    return decode(body).attach_raw(RawBody(data, body)), include_usage(body)
