"""Cache and dedup keys remembered by the caller's request bytes.

A request that still carries the body it was decoded from (:class:`~llmrelay.types.RawBody`; a
layer that changes a request drops it, only the model may be rewritten and is part of the memo's
key) is exactly what those bytes decode to at that edge. So a hot prompt sent again byte for byte
skips the canonical serialisation and hash of :func:`.request_key.request_key` (~4 us -> ~0.5 us).

    keys = KeyMemo()
    key = keys.key(request, ctx.protocol, scope)   # == entry_key(request.model, request_key(request, scope))
"""

from __future__ import annotations

from ..types import ChatRequest
from .backends.base import entry_key
from .request_key import request_key

# Bounds: how many keys are remembered, and the largest body remembered (bytes).
_MAX_KEYS = 1024
_MAX_BODY = 16 << 10


class KeyMemo:
    """(body bytes, edge, model, scope) -> the entry key; bounded, cleared when full."""

    __slots__ = ("_keys", "max_body", "max_keys")

    def __init__(self, max_keys: int = _MAX_KEYS, max_body: int = _MAX_BODY) -> None:
        self.max_keys, self.max_body = max_keys, max_body
        self._keys: dict[tuple[bytes, str, str, str], str] = {}

    def key(self, request: ChatRequest, protocol: str, scope: str) -> str:
        raw = request.raw
        if raw is None or len(raw.data) > self.max_body:
            return entry_key(request.model, request_key(request, scope))
        # The edge is part of the key: two edges may decode the same bytes differently.
        memo_key = (raw.data, protocol, request.model, scope)
        key = self._keys.get(memo_key)
        if key is None:
            key = entry_key(request.model, request_key(request, scope))
            if len(self._keys) >= self.max_keys:
                self._keys.clear()
            self._keys[memo_key] = key
        return key

    def __len__(self) -> int:
        return len(self._keys)
