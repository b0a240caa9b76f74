"""A lean HTTP/1.1 keep-alive client for upstream calls: asyncio protocols and httptools.

The gateway's upstream calls are all alike (a POST of a JSON body to a few fixed URLs, a JSON or SSE
answer), so the general-purpose machinery of aiohttp (a request object, header multidicts, the
payload writer, the connector's bookkeeping) was ~17% of the gateway's CPU per request
(benchmarks/results/PROFILE.md). This client writes a request head and body in one ``write``, parses
the answer with httptools (the C parser uvicorn uses), and keeps idle connections per origin:

    >>> transport = H1Transport(PoolLimits(max_connections=64))
    >>> # response = await transport.send(HTTPRequest("POST", "https://api.example.com/v1/x", {...}, b"{}"))

Semantics match :class:`~llmrelay.transport.AiohttpTransport`: FIFO pool slots, ``read_timeout``
per wait for bytes (a stall), no redirects, no cookies, gzip/deflate answers decoded, backend errors
converted to llmrelay errors here. A request on a reused connection that the upstream had closed
meanwhile (no byte of an answer) is sent once more on a new connection, as HTTP clients do.
"""

from __future__ import annotations

import asyncio
import ssl
import time
import zlib
from collections import deque
from collections.abc import AsyncIterator, Mapping
from types import MappingProxyType
from typing import Any, cast
from urllib.parse import urlsplit

import httptools

from .errors import LLMRelayError, ProviderTimeoutError, ProviderUnavailableError, StreamInterruptedError
from .transport import HTTPRequest, HTTPResponse, PoolLimits, cut_lines, last_line

Origin = tuple[str, str, int]  # scheme, host, port
# Bytes buffered from the upstream before reading pauses (a slow reader of a fast stream).
HIGH_WATER = 64 * 1024


class _StaleConnection(ProviderUnavailableError):
    """The connection closed before any byte of the answer (on a reused one: send again)."""


class _Conn(asyncio.Protocol):
    """One upstream connection; it carries one exchange at a time (no pipelining)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.idle_since = 0.0
        self.resp: H1Response | None = None

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self.resp is not None:
            self.resp._got_bytes = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(StreamInterruptedError(f"the upstream sent an invalid HTTP answer ({exc})"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.resp is not None:
            self.resp._lost()

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        if self.resp is not None:
            self.resp._raw_headers.append((name, value))

    def on_headers_complete(self) -> None:
        if self.resp is not None:
            self.resp._headers_done(self.parser.get_status_code())

    def on_body(self, body: bytes) -> None:
        # H1Response._feed inlined: httptools calls this once per HTTP chunk, and an upstream that
        # sends a stream in one write (many do for short answers) has every event parsed here, in
        # one data_received, before the first one can go on: one call per chunk instead of three.
        resp = self.resp
        if resp is None or resp.status == 0:  # no exchange, or the body of an interim answer
            return
        resp._chunks.append(body)
        resp._size += len(body)
        if resp._size > HIGH_WATER and not resp._paused and self.transport is not None:
            resp._paused = True
            self.transport.pause_reading()
        waiter = resp._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def on_message_complete(self) -> None:
        if self.resp is not None:
            self.resp._complete(self.parser.should_keep_alive())

    def _fail(self, err: LLMRelayError) -> None:
        if self.resp is not None:
            self.resp._error(err)
        self.close()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class H1Response:
    """The answer on a connection: status and headers once they arrived; the body as it comes."""

    __slots__ = ("_chunks", "_conn", "_decoder", "_done", "_err", "_framed", "_got_bytes", "_headers",
                 "_on_done", "_paused", "_raw_headers", "_read_timeout", "_size", "_slot", "_timer", "_wait_since",
                 "_waiter", "status")

    def __init__(self, conn: _Conn, read_timeout: float | None, on_done: Any) -> None:
        self._conn = conn
        self._read_timeout = read_timeout
        self._on_done = on_done  # called once with (conn, reusable)
        # The pool slot, handed over once the head arrived; given back when the exchange ends.
        self._slot: asyncio.Semaphore | None = None
        self.status = 0
        self._raw_headers: list[tuple[bytes, bytes]] = []
        self._headers: dict[str, str] | None = None
        self._chunks: deque[bytes] = deque()
        self._size = 0
        self._paused = False
        self._done = False
        self._got_bytes = False
        self._framed = True  # Content-Length or chunked; else the body ends with the connection
        self._err: LLMRelayError | None = None
        self._waiter: asyncio.Future[None] | None = None
        # One read-timeout timer per answer, not one per wait (a stream waits once per network
        # read; a timer costs ~1.5-3 us to make and cancel): it checks the current wait's start.
        self._timer: asyncio.TimerHandle | None = None
        self._wait_since = 0.0
        self._decoder: Any = None

    @property
    def headers(self) -> Mapping[str, str]:
        if self._headers is None:
            self._headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in self._raw_headers}
        return self._headers

    @headers.setter
    def headers(self, value: Mapping[str, str]) -> None:
        self._headers = dict(value)

    # --- fed by the connection
    def _headers_done(self, status: int) -> None:
        if 100 <= status < 200:  # an interim answer (100 Continue): the real one follows
            self._raw_headers.clear()
            return
        self.status = status
        framed = False
        for name, value in self._raw_headers:
            lname = name.lower()
            if lname == b"content-length" or (lname == b"transfer-encoding" and b"chunked" in value.lower()):
                framed = True
            elif lname == b"content-encoding" and value.strip().lower() in (b"gzip", b"deflate", b"x-gzip"):
                self._decoder = zlib.decompressobj(zlib.MAX_WBITS | 32)  # gzip or zlib, from the header
        self._framed = framed
        self._wake()

    def _complete(self, keep_alive: bool) -> None:
        if self.status == 0:
            return  # the end of an interim answer
        self._done = True
        if self._paused and self._conn.transport is not None:
            # The answer is complete: reading may resume for the connection's next exchange.
            self._paused = False
            self._conn.transport.resume_reading()
        self._release(keep_alive)
        self._wake()

    def _lost(self) -> None:
        if self._done:
            return
        if self.status and not self._framed:  # the body ends with the connection (HTTP/1.0 style)
            self._done = True
            self._release(False)
        else:
            self._error(StreamInterruptedError("the upstream closed the connection mid-answer")
                        if self._got_bytes else _StaleConnection("the upstream closed the connection before answering"))
        self._wake()

    def _error(self, err: LLMRelayError) -> None:
        if self._err is None and not self._done:
            self._err = err
            self._release(False)
        self._wake()

    def _release(self, reusable: bool) -> None:
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
        on_done, self._on_done = self._on_done, None
        if on_done is not None:
            on_done(self._conn, reusable and not self._paused)
            slot, self._slot = self._slot, None
            if slot is not None:
                slot.release()

    def _hand_slot(self, slot: asyncio.Semaphore | None) -> None:
        if slot is not None and self._on_done is None:  # already over (a short answer, read whole)
            slot.release()
        else:
            self._slot = slot

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # --- read by the caller
    async def _wait(self) -> None:
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        if self._read_timeout:
            self._wait_since = loop.time()
            if self._timer is None:
                self._timer = loop.call_later(self._read_timeout, self._check_stall)
        try:
            await waiter
        finally:
            self._waiter = None

    def _check_stall(self) -> None:
        """The read timeout: a stall when the current wait began ``read_timeout`` ago; else the
        timer is set again for the rest of the current wait (none waiting: the next wait sets it)."""
        self._timer = None
        if self._waiter is None or self._read_timeout is None:
            return
        loop = asyncio.get_running_loop()
        left = self._wait_since + self._read_timeout - loop.time()
        if left > 0:
            self._timer = loop.call_later(left, self._check_stall)
            return
        self._stalled()

    def _stalled(self) -> None:
        self._error(StreamInterruptedError("the upstream stopped sending (read timed out)") if self.status
                    else ProviderTimeoutError("the upstream did not answer in time"))
        self._conn.close()

    async def _head(self) -> None:
        try:
            while not self.status and self._err is None:
                await self._wait()
        except BaseException:
            self._abandon()
            raise
        if self._err is not None and not self.status:
            raise self._err

    def _take(self) -> bytes:
        data = b"".join(self._chunks) if len(self._chunks) != 1 else self._chunks[0]
        self._chunks.clear()
        self._size = 0
        if self._paused and self._conn.transport is not None and not self._conn.closed:
            self._paused = False
            self._conn.transport.resume_reading()
        return self._decoder.decompress(data) if self._decoder is not None and data else data

    async def _next(self) -> bytes | None:
        """The body bytes that arrived since the last call, or None at its end."""
        while not self._chunks and not self._done:
            if self._err is not None:
                raise self._err
            await self._wait()
        if self._chunks:
            return self._take()
        if self._err is not None:
            raise self._err
        if self._decoder is not None:
            tail: bytes = self._decoder.flush()
            self._decoder = None
            return tail or None
        return None

    async def read(self) -> bytes:
        if self._done and self._err is None and self._decoder is None:
            # The whole body came with the head (most answers): nothing to wait for or decode.
            return self._take() if self._chunks else b""
        parts: list[bytes] = []
        try:
            while (data := await self._next()) is not None:
                parts.append(data)
        except BaseException:
            self._abandon()
            raise
        return parts[0] if len(parts) == 1 else b"".join(parts)

    async def aiter_lines(self) -> AsyncIterator[bytes]:
        buf = b""
        try:
            while (data := await self._next()) is not None:
                lines, buf = cut_lines(buf + data if buf else data)
                for line in lines:
                    yield line
            if buf:
                yield last_line(buf)
        finally:
            self._abandon()

    def _abandon(self) -> None:
        # A body not read to its end leaves the connection mid-answer: it cannot be reused.
        if self._on_done is not None:
            self._conn.close()
            self._release(False)

    async def aclose(self) -> None:
        self._abandon()


class H1Transport:
    """Pooled HTTP/1.1 keep-alive client. Create one per provider; close it on shutdown."""

    def __init__(self, limits: PoolLimits | None = None, *, ssl_context: ssl.SSLContext | None = None) -> None:
        """``ssl_context``: how HTTPS upstreams are verified; by default the system's CAs (which
        ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` extend, e.g. for a company's own CA)."""
        self._limits = limits or PoolLimits()
        self._idle: dict[Origin, list[_Conn]] = {}
        self._gate: asyncio.Semaphore | None = None
        self._gate_loop: asyncio.AbstractEventLoop | None = None
        self._targets: dict[str, tuple[Origin, bytes]] = {}
        # Encoded header lines of read-only header mappings (a provider hands out the same
        # MappingProxyType for every call): id -> (the mapping, held so the id stays its, lines).
        self._heads: dict[int, tuple[Mapping[str, str], bytes]] = {}
        self._ssl: ssl.SSLContext | None = ssl_context

    def _target(self, url: str) -> tuple[Origin, bytes]:
        """(origin, request-line target + Host line) of ``url``, parsed once per distinct URL."""
        hit = self._targets.get(url)
        if hit is not None:
            return hit
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ProviderUnavailableError(f"invalid upstream URL: {url!r}")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        host = parts.netloc.rsplit("@", 1)[-1]
        hit = ((parts.scheme, parts.hostname, port), f"{path} HTTP/1.1\r\nhost: {host}\r\n".encode("latin-1"))
        if len(self._targets) < 256:
            self._targets[url] = hit
        return hit

    def _slot_gate(self) -> asyncio.Semaphore | None:
        loop = asyncio.get_running_loop()
        if self._gate_loop is not loop:  # a new event loop: a new gate, and no connection survives
            self._gate_loop = loop
            self._idle.clear()
            n = self._limits.max_connections
            self._gate = asyncio.Semaphore(n) if n > 0 else None
        return self._gate

    def _header_lines(self, headers: Mapping[str, str]) -> bytes:
        """The header lines of ``headers``; encoded once for a read-only mapping that is sent again."""
        if type(headers) is not MappingProxyType:
            return _header_lines(headers)
        hit = self._heads.get(id(headers))
        if hit is not None and hit[0] is headers:
            return hit[1]
        lines = _header_lines(headers)
        if len(self._heads) < 64:
            self._heads[id(headers)] = (headers, lines)
        return lines

    async def send(self, request: HTTPRequest) -> HTTPResponse:
        origin, target = self._target(request.url)
        data = _encode(request, target, self._header_lines(request.headers))
        gate = self._slot_gate()
        if gate is not None:
            await gate.acquire()
        try:
            resp = await self._exchange(origin, data, request.read_timeout)
        except BaseException as exc:
            if gate is not None:
                gate.release()
            if isinstance(exc, LLMRelayError | OSError | asyncio.TimeoutError):
                raise _convert(exc) from exc
            raise
        resp._hand_slot(gate)
        return resp

    async def _exchange(self, origin: Origin, data: bytes, read_timeout: float | None) -> H1Response:
        for _ in range(2):
            conn = self._take_idle(origin)
            reused = conn is not None
            if conn is None:
                conn = await self._connect(origin)
            resp = H1Response(conn, read_timeout, self._finisher(origin))
            conn.resp = resp
            assert conn.transport is not None
            conn.transport.write(data)
            try:
                await resp._head()
            except _StaleConnection:
                if reused:
                    continue
                raise
            return resp
        raise ProviderUnavailableError("the upstream closed the connection before answering")

    def _finisher(self, origin: Origin) -> Any:
        def done(conn: _Conn, reusable: bool) -> None:
            conn.resp = None
            if reusable and not conn.closed:
                conn.idle_since = time.monotonic()
                self._idle.setdefault(origin, []).append(conn)
            else:
                conn.close()

        return done

    def _take_idle(self, origin: Origin) -> _Conn | None:
        idle = self._idle.get(origin)
        if not idle:
            return None
        now = time.monotonic()
        while idle:
            conn = idle.pop()  # the most recently used: the least likely to have been closed
            if not conn.closed and now - conn.idle_since < self._limits.keepalive_s:
                return conn
            conn.close()
        return None

    async def _connect(self, origin: Origin) -> _Conn:
        scheme, host, port = origin
        loop = asyncio.get_running_loop()
        ctx = None
        if scheme == "https":
            ctx = self._ssl = self._ssl or ssl.create_default_context()
        try:
            async with asyncio.timeout(self._limits.connect_timeout_s):
                _, conn = await loop.create_connection(_Conn, host, port, ssl=ctx,
                                                       server_hostname=host if ctx else None)
        except TimeoutError:
            raise ProviderTimeoutError(f"cannot connect to the upstream {host}:{port} (timed out)") from None
        except OSError as exc:
            raise ProviderUnavailableError(f"cannot connect to the upstream {host}:{port}: {exc}") from exc
        return conn

    async def aclose(self) -> None:
        for conns in self._idle.values():
            for conn in conns:
                conn.close()
        self._idle.clear()


_FRAMING = frozenset(("host", "content-length", "transfer-encoding", "connection"))


def _header_lines(headers: Mapping[str, str]) -> bytes:
    pairs = [f"{k}: {v}\r\n" for k, v in headers.items() if k.lower() not in _FRAMING]
    lines = "".join(pairs)
    # A line break inside a name or value would smuggle a header (or a request) upstream.
    if lines.count("\n") != len(pairs) or lines.count("\r") != len(pairs):
        raise ProviderUnavailableError("an upstream request header contains a line break")
    return lines.encode("latin-1")


def _encode(request: HTTPRequest, target: bytes, lines: bytes) -> bytes:
    body = request.body
    start = b"%s %s%s" % (request.method.encode("ascii"), target, lines)
    if body is None:  # a GET: no body, so no length either
        return start + b"\r\n"
    return b"%scontent-length: %d\r\n\r\n%s" % (start, len(body), body)


def _convert(exc: BaseException) -> LLMRelayError:
    if isinstance(exc, LLMRelayError):
        return exc
    if isinstance(exc, asyncio.TimeoutError):
        return ProviderTimeoutError("the upstream did not answer in time")
    return ProviderUnavailableError(f"upstream connection failed: {exc}")
