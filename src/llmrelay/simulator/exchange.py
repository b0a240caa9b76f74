"""What a simulated route receives (:class:`Exchange`) and returns (:class:`Reply`), and the base
class every provider dialect extends.

A dialect maps its wire format to the neutral :class:`~.answer.Prompt` and renders answers, errors and
rate-limit headers in its own format. Adding one:

    class EchoDialect(Dialect):
        name = "echo"
        def routes(self):
            return {("POST", "/echo/chat"): self.chat}
        async def chat(self, ex):
            return Reply(body=ex.raw)
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from .answer import Options

Headers = list[tuple[bytes, bytes]]
JSON = b"application/json"
SSE = b"text/event-stream; charset=utf-8"


@dataclass(slots=True)
class Reply:
    """A response: ``body`` for a plain one, ``frames`` (pre-encoded) for a stream."""

    status: int = 200
    body: bytes = b""
    frames: list[bytes] | None = None
    content_type: bytes = JSON
    headers: Headers = field(default_factory=list)


@dataclass(slots=True)
class Exchange:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    raw: bytes
    body: Any
    model: str | None = None
    options: Options = field(default_factory=Options)
    now: float = 0.0
    params: dict[str, str] = field(default_factory=dict)

    @property
    def created(self) -> int:
        return int(self.now)

    def rid(self, prefix: str, n: int = 24) -> str:
        """A deterministic id for this request (same body, same id)."""
        return prefix + hashlib.blake2b(self.raw, digest_size=16).hexdigest()[:n]


class SimError(Exception):
    """A client error found while reading a request; rendered in the dialect's error format."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


Handler = Callable[[Exchange], Awaitable[Reply]]


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj)


class Dialect:
    """One provider's API. Subclasses set ``name`` and implement the methods below."""

    name = "base"

    def routes(self) -> dict[tuple[str, str], Handler]:
        raise NotImplementedError

    def match(self, method: str, path: str) -> tuple[Handler, str, dict[str, str]] | None:
        """For paths with parameters (the route table has exact paths); returns handler, route name, params."""
        return None

    def model_of(self, ex: Exchange) -> str | None:
        body = ex.body
        if isinstance(body, dict) and isinstance(body.get("model"), str):
            return str(body["model"])
        return None

    def check_auth(self, ex: Exchange) -> None:
        """Raise :class:`SimError` for a refused key. Keys starting with ``invalid`` are refused."""
        auth = ex.headers.get("authorization", "")
        if auth.lower().startswith("bearer invalid"):
            raise SimError(401, "Incorrect API key provided.")

    def error(self, status: int, message: str) -> Reply:
        raise NotImplementedError

    def rate_headers(self, remaining_requests: int, reset_s: float, tokens: int, now: float) -> Headers:
        """The provider's rate-limit headers; ``reset_s`` is how long until the window resets."""
        return []
