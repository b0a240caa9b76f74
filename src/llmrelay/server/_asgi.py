"""The few ASGI pieces the gateway needs, written directly for a lean hot path.

A route handler receives a :class:`Request` and returns a :class:`Response` (bytes) or a
:class:`StreamResponse` (an async iterator of bytes). No framework sits between uvicorn and the
handler: one dict lookup routes, the body is read once, headers are prebuilt byte pairs.
"""

from __future__ import annotations

import asyncio
import contextlib
import types
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from ..context import RequestContext
from ..errors import InvalidRequestError, RequestTooLargeError

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]

JSON_TYPE = (b"content-type", b"application/json")
SSE_HEADERS: Headers = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache"),
                        (b"x-accel-buffering", b"no")]


class ClientGone(Exception):
    """The client closed the connection before the answer was complete."""


@dataclass(slots=True)
class Request:
    scope: Scope
    receive: Receive
    # Path parameters from the route (e.g. a key id).
    params: dict[str, str] = field(default_factory=dict)
    # The call's context once the handler has built it (error responses carry its headers).
    ctx: RequestContext | None = None
    _headers: dict[str, str] | None = None

    @property
    def method(self) -> str:
        return str(self.scope["method"])

    @property
    def path(self) -> str:
        return str(self.scope["path"])

    @property
    def headers(self) -> Mapping[str, str]:
        # Decoded lazily: most requests read only a handful of headers.
        if self._headers is None:
            self._headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in self.scope["headers"]}
        return self._headers

    async def body(self, limit: int) -> bytes:
        """The whole body, refused with 413 when it exceeds ``limit`` (declared or actually sent)."""
        declared = self.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise RequestTooLargeError(f"the request body is {declared} bytes; the limit is {limit} bytes")
        parts: list[bytes] = []
        size = 0
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise ClientGone()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise RequestTooLargeError(f"the request body is over the limit of {limit} bytes")
            parts.append(chunk)
            if not message.get("more_body", False):
                return parts[0] if len(parts) == 1 else b"".join(parts)

    async def json_bytes(self, limit: int) -> bytes:
        """The body as received, once its content type says JSON and it is not empty (415/400);
        for an edge that parses it itself (server/decode_memo.py)."""
        ctype = self.headers.get("content-type", "application/json")
        if "json" not in ctype.split(";", 1)[0].lower():
            raise UnsupportedMediaType(f"the content type must be application/json, got {ctype!r}")
        raw = await self.body(limit)
        if not raw.strip():
            raise InvalidRequestError("the request body is empty; send a JSON object")
        return raw

    async def json(self, limit: int) -> Any:
        """The body parsed as JSON; 415 for another content type, 400 for malformed JSON."""
        return (await self.json_and_bytes(limit))[0]

    async def json_and_bytes(self, limit: int) -> tuple[Any, bytes]:
        """The body parsed as JSON, and as received (for the fast path's byte forwarding)."""
        raw = await self.json_bytes(limit)
        try:
            return orjson.loads(raw), raw
        except orjson.JSONDecodeError as exc:
            raise InvalidRequestError(f"the request body is not valid JSON ({exc})") from None


class UnsupportedMediaType(InvalidRequestError):
    status = 415
    code = "unsupported_media_type"


@dataclass(slots=True)
class Response:
    status: int = 200
    body: bytes = b""
    headers: Headers = field(default_factory=lambda: [JSON_TYPE])

    async def send(self, send: Send, receive: Receive) -> None:
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        await send({"type": "http.response.body", "body": self.body})


def json_response(obj: Any, status: int = 200, headers: Iterable[tuple[bytes, bytes]] = ()) -> Response:
    return Response(status, orjson.dumps(obj), [JSON_TYPE, *headers])


@dataclass(slots=True)
class StreamResponse:
    """Streams ``body`` while watching for the client going away; if it does, the iterator is
    closed (which cancels the upstream call) and ``on_disconnect`` runs."""

    body: AsyncIterator[bytes]
    status: int = 200
    headers: Headers = field(default_factory=lambda: list(SSE_HEADERS))
    on_disconnect: Callable[[], None] | None = None

    async def send(self, send: Send, receive: Receive) -> None:
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        await self.send_body(send, receive)

    async def send_body(self, send: Send, receive: Receive) -> None:
        """The body after the start message, in a writer task raced against the client's going away."""
        writer = asyncio.ensure_future(self._write(send))
        watcher = asyncio.ensure_future(_wait_disconnect(receive))
        try:
            done, _ = await asyncio.wait((writer, watcher), return_when=asyncio.FIRST_COMPLETED)
            if writer not in done:
                writer.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await writer
                if self.on_disconnect is not None:
                    self.on_disconnect()
            else:
                writer.result()
        finally:
            watcher.cancel()
            if not writer.done():  # this task was cancelled: the body must not go on alone
                writer.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await writer
            aclose = getattr(self.body, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()

    async def _write(self, send: Send) -> None:
        """Send the body, one write for the pieces that are ready together.

        An upstream often delivers several events in one read (and a cache or a replay all of
        them): each would be its own ASGI message, HTTP chunk and system call. The first piece goes
        out at once (time to first chunk); after it, pieces that follow without the body having to
        wait are joined, and written as soon as it would wait, or at ``COALESCE_PIECES`` /
        ``COALESCE_BYTES``. So nothing is ever held back while the gateway waits on the upstream;
        the client receives the same bytes, in fewer TCP writes."""
        body = self.body.__aiter__()
        pending: list[bytes] = []
        size = 0
        first = True
        while True:
            step: Any = body.__anext__()
            try:
                # An awaitable without send() (a Future, say) is simply awaited.
                waiting = step.send(None) if hasattr(step, "send") else step
            except StopIteration as ready:
                data = ready.value
            except StopAsyncIteration:
                break
            else:
                # The next piece is not there yet: write what is, then wait for it.
                try:
                    if pending:
                        await _send_body(send, pending, True)
                        pending, size = [], 0
                except BaseException as exc:
                    await _deliver(step, exc)
                    raise
                try:
                    data = await (_resume(step, waiting) if waiting is not step else step)
                except StopAsyncIteration:
                    break
            if data:
                pending.append(data)
                size += len(data)
            if first or len(pending) >= COALESCE_PIECES or size >= COALESCE_BYTES:
                first = False
                if pending:
                    await _send_body(send, pending, True)
                    pending, size = [], 0
        await _send_body(send, pending, False)


# Most pieces (and bytes) one coalesced write holds, so a long burst still reaches the client in
# steps rather than only when the burst ends.
COALESCE_PIECES = 16
COALESCE_BYTES = 64 * 1024


async def _send_body(send: Send, pieces: list[bytes], more: bool) -> None:
    data = pieces[0] if len(pieces) == 1 else b"".join(pieces)
    await send({"type": "http.response.body", "body": data, "more_body": more})


@types.coroutine
def _resume(step: Any, waiting: Any) -> Generator[Any, Any, Any]:
    """Go on awaiting ``step`` (a coroutine already run up to its first suspension, which yielded
    ``waiting``) exactly as the task would have: ``waiting`` is handed to the task, and whatever
    the task sends or throws back goes to ``step``."""
    while True:
        try:
            yield waiting
        except BaseException as exc:
            try:
                waiting = step.throw(exc)
            except StopIteration as done:
                return done.value
            continue
        return (yield from step)


async def _deliver(step: Any, exc: BaseException) -> None:
    """``exc`` (a cancellation, say) struck while ``step`` was suspended but not awaited: give it
    to ``step`` as if it had been awaited, and let it finish (its clean-up may await)."""
    if not hasattr(step, "throw"):
        return
    try:
        waiting = step.throw(exc)
    except BaseException:  # it ended (with exc itself, most often): nothing is left to await
        return
    with contextlib.suppress(BaseException):
        await _resume(step, waiting)


async def _wait_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
