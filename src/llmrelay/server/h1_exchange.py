"""One request and its answer on an :class:`~.h1_protocol.H1Protocol` connection: the ASGI
``receive`` and ``send`` of that request, and how its response is framed on the wire
(content-length, chunked, or close-delimited for HTTP/1.0; a HEAD answer without its body)."""

from __future__ import annotations

import asyncio
import http
import logging
from collections.abc import Callable
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .h1_protocol import H1Protocol

Message = dict[str, Any]
App = Callable[..., Any]

NO_BODY_STATUS = frozenset({204, 304})
_DISCONNECT: MappingProxyType[str, str] = MappingProxyType({"type": "http.disconnect"})
_SERVER_ERROR = b"Internal Server Error"


def status_line(status: int) -> bytes:
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    return f"HTTP/1.1 {status} {phrase}\r\n".encode("latin-1")


STATUS_LINES = MappingProxyType({status: status_line(status) for status in range(100, 600)})


class Exchange:
    """One request and its answer; ``receive`` and ``send`` are the ASGI callables."""

    __slots__ = ("body", "chunked", "complete", "delivered", "expect_continue", "gone", "head", "keep_alive",
                 "left", "more_body", "pending", "proto", "scope", "started", "waiter")

    def __init__(self, proto: H1Protocol, scope: dict[str, Any], keep_alive: bool, expect: bool) -> None:
        self.proto = proto
        self.scope = scope
        self.keep_alive = keep_alive
        self.expect_continue = expect
        self.body = bytearray()
        self.more_body = True
        self.gone = self.started = self.complete = self.delivered = False
        self.head = scope["method"] == "HEAD"
        self.chunked = False
        self.left = 0  # content-length bytes still to send (-1: chunked or close-delimited)
        self.pending = b""  # the answer's head until its first body bytes (or the loop's next turn)
        self.waiter: asyncio.Future[None] | None = None

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def lost(self) -> None:
        if not self.complete:
            self.gone = True
        self.wake()

    async def run(self, app: App) -> None:
        proto = self.proto
        try:
            result = await app(self.scope, self.receive, self.send)
        except BaseException as exc:  # the server's boundary: log it, answer 500 or close
            proto.logger.error("Exception in ASGI application\n", exc_info=exc)
            if not self.started:
                await self._send_500()
            else:
                self.pending = b""
                proto.transport.close()
            return
        if result is not None:
            proto.logger.error("ASGI callable should return None, but returned '%s'.", result)
            proto.transport.close()
        elif not self.started and not self.gone:
            proto.logger.error("ASGI callable returned without starting response.")
            await self._send_500()
        elif not self.complete and not self.gone:
            proto.logger.error("ASGI callable returned without completing response.")
            proto.transport.close()

    async def _send_500(self) -> None:
        await self.send({"type": "http.response.start", "status": 500, "headers": [
            (b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"21"), (b"connection", b"close")]})
        await self.send({"type": "http.response.body", "body": _SERVER_ERROR})

    async def receive(self) -> Message:
        if self.expect_continue:
            self.expect_continue = False
            if not self.proto.transport.is_closing():
                self.proto.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        while not (self.gone or self.complete):
            if self.body or not (self.more_body or self.delivered):
                body = bytes(self.body)
                self.body.clear()
                self.delivered = not self.more_body  # the last part: later calls wait for the end
                self.proto._resume_reading()
                return {"type": "http.request", "body": body, "more_body": self.more_body}
            self.proto._resume_reading()
            self.waiter = self.proto.loop.create_future()
            await self.waiter
            self.waiter = None
        return dict(_DISCONNECT)

    async def send(self, message: Message) -> None:
        proto = self.proto
        if proto.write_paused and not self.gone:
            await proto.drain()
        if self.gone:
            return
        kind = message["type"]
        if not self.started:
            if kind != "http.response.start":
                raise RuntimeError(f"Expected ASGI message 'http.response.start', but got '{kind}'.")
            self._start(message)
        elif not self.complete:
            if kind != "http.response.body":
                raise RuntimeError(f"Expected ASGI message 'http.response.body', but got '{kind}'.")
            self._body(message.get("body", b""), message.get("more_body", False))
        else:
            raise RuntimeError(f"Unexpected ASGI message '{kind}' sent, after response already completed.")

    def _start(self, message: Message) -> None:
        self.started = True
        self.expect_continue = False
        proto = self.proto
        status: int = message["status"]
        if proto.access_log:
            _log_access(self.scope, status)
        parts: list[bytes] = []
        length: int | None = None
        closing = False
        for name, value in message.get("headers", ()):
            name = name.lower()
            if name == b"content-length" and length is None:
                length = int(value)
            elif name == b"transfer-encoding" and value.lower() == b"chunked":
                self.chunked = True
            elif name == b"connection" and b"close" in [t.strip() for t in value.lower().split(b",")]:
                self.keep_alive = False
                closing = True
            parts += (name, b": ", value, b"\r\n")
        block = b"".join(parts)
        # Three C scans instead of a regex per header: a CR, LF or NUL beyond the line ends is a
        # header name or value trying to inject a line (or a whole response).
        lines = len(parts) >> 2
        if block.count(b"\n") != lines or block.count(b"\r") != lines or b"\0" in block:
            raise RuntimeError("Invalid HTTP header name or value (CR, LF or NUL).")
        extra = b"" if self.keep_alive or closing else b"connection: close\r\n"
        if self.chunked:
            self.left = -1
        elif length is not None:
            self.left = length
        elif self.head or status in NO_BODY_STATUS:
            self.left = 0
        elif self.scope["http_version"] == "1.0":
            self.left = -1  # a 1.0 client reads to the close; it knows no chunked
            extra = b"connection: close\r\n" if not closing else b""
            self.keep_alive = False
        else:
            self.chunked = True
            self.left = -1
            extra += b"transfer-encoding: chunked\r\n"
        # The head waits for the first body bytes (one write, one send(2)); a stream whose first
        # bytes take longer still gets its head at the end of this loop iteration.
        self.pending = b"".join((STATUS_LINES.get(status) or status_line(status), proto.default_headers(),
                                 block, extra, b"\r\n"))
        proto.loop.call_soon(self.flush)

    def flush(self) -> None:
        if self.pending and not self.proto.transport.is_closing():
            self.proto.transport.write(self.pending)
        self.pending = b""

    def _body(self, body: bytes, more: bool) -> None:
        head, self.pending = self.pending, b""
        if self.head:
            body = b""
        elif self.chunked:
            if body:
                body = b"%x\r\n%b\r\n" % (len(body), body)
            if not more:
                body += b"0\r\n\r\n"
        elif self.left >= 0:
            if len(body) > self.left:
                raise RuntimeError("Response content longer than Content-Length")
            self.left -= len(body)
        if head or body:
            self.proto.transport.write(head + body if head else body)
        if more:
            return
        if self.left > 0 and not self.head:
            raise RuntimeError("Response content shorter than Content-Length")
        self.complete = True
        self.wake()
        if not self.keep_alive:
            self.proto.transport.close()
        self.proto.response_done()


def _log_access(scope: Any, status: int) -> None:
    from uvicorn.protocols.utils import get_client_addr, get_path_with_query_string

    logging.getLogger("uvicorn.access").info('%s - "%s %s HTTP/%s" %d', get_client_addr(scope), scope["method"],
                                            get_path_with_query_string(scope), scope["http_version"], status)
