"""The HTTP transport providers send their requests through.

One small protocol (``send`` a request, get a response whose body can be read whole or line by line)
with three implementations: :class:`~llmrelay.transport_h1.H1Transport`, the providers' default
(:func:`default_transport`), a lean HTTP/1.1 pool on asyncio and httptools; :class:`AiohttpTransport`,
a pooled aiohttp client (aiohttp measured faster than httpx under concurrency, see
``benchmarks/http_clients.py``; H1Transport spends 17-32% less gateway CPU per request than it,
benchmarks/results/PROFILE.md round five); and :class:`MockTransport`, which answers from a plain
handler function so tests need no network:

    >>> async def handler(request: HTTPRequest) -> MockResponse:
    ...     return MockResponse(200, {"content-type": "application/json"}, b'{"ok": true}')
    >>> transport = MockTransport(handler)

Backend exceptions are converted to llmrelay errors here, in one place.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from .errors import (
    LLMRelayError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    StreamInterruptedError,
)


@dataclass(frozen=True, slots=True)
class HTTPRequest:
    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | None = None
    # Seconds without any byte from the upstream before the read is abandoned (a stall).
    read_timeout: float | None = None


class HTTPResponse(Protocol):
    status: int
    # Lower-cased header names.
    headers: Mapping[str, str]

    async def read(self) -> bytes: ...

    def aiter_lines(self) -> AsyncIterator[bytes]:
        """The body as lines, without their line endings (for SSE and NDJSON)."""
        ...

    async def aclose(self) -> None: ...


class Transport(Protocol):
    async def send(self, request: HTTPRequest) -> HTTPResponse:
        """Send the request and return once the status and headers have arrived."""
        ...

    async def aclose(self) -> None: ...


def cut_lines(buf: bytes) -> tuple[list[bytes], bytes]:
    """The whole lines at the start of ``buf`` (LF or CRLF, without it) and the unfinished rest.

    The transports call it once per network read in their own ``aiter_lines`` loop, rather than
    stacking a line-splitting generator on the byte stream: a stream has two lines per event, and
    a generator level per line was measurable."""
    if b"\n" not in buf:
        return [], buf
    *lines, rest = buf.split(b"\n")
    return [line[:-1] if line.endswith(b"\r") else line for line in lines], rest


def last_line(buf: bytes) -> bytes:
    """What is left after the last newline, as a final line."""
    return buf[:-1] if buf.endswith(b"\r") else buf


async def split_lines(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Split a byte stream into lines (LF or CRLF), with no limit on line length."""
    buf = b""
    async for data in chunks:
        lines, buf = cut_lines(buf + data if buf else data)
        for line in lines:
            yield line
    if buf:
        yield last_line(buf)


def default_transport(limits: PoolLimits | None = None) -> Transport:
    """The transport a provider sends through unless it is given one."""
    from .transport_h1 import H1Transport

    return H1Transport(limits)


# ------------------------------------------------------------------------------------- aiohttp


@dataclass(frozen=True, slots=True)
class PoolLimits:
    max_connections: int = 256
    max_connections_per_host: int = 0
    keepalive_s: float = 60.0
    connect_timeout_s: float = 10.0


class _AiohttpResponse:
    __slots__ = ("_headers", "_resp", "_slot", "status")

    def __init__(self, resp: Any, slot: asyncio.Semaphore | None) -> None:
        self._resp = resp
        # The pool slot this response holds until its body is read or it is closed.
        self._slot = slot
        self.status: int = resp.status
        self._headers: Mapping[str, str] | None = None

    @property
    def headers(self) -> Mapping[str, str]:
        # Built on first use: a successful answer's headers are usually never read.
        if self._headers is None:
            self._headers = {k.lower(): v for k, v in self._resp.headers.items()}
        return self._headers

    @headers.setter
    def headers(self, value: Mapping[str, str]) -> None:
        self._headers = value

    def _done(self) -> None:
        self._resp.release()
        slot, self._slot = self._slot, None
        if slot is not None:
            slot.release()

    async def read(self) -> bytes:
        try:
            return bytes(await self._resp.read())
        except Exception as exc:
            raise _convert(exc, reading=True) from exc
        finally:
            self._done()

    async def aiter_lines(self) -> AsyncIterator[bytes]:
        buf = b""
        try:
            async for data in self._resp.content.iter_any():
                lines, buf = cut_lines(buf + data if buf else data)
                for line in lines:
                    yield line
            if buf:
                yield last_line(buf)
        except LLMRelayError:
            raise
        except Exception as exc:
            raise _convert(exc, reading=True) from exc
        finally:
            self._done()

    async def aclose(self) -> None:
        self._done()


def _convert(exc: BaseException, *, reading: bool = False) -> LLMRelayError:
    import aiohttp

    if isinstance(exc, LLMRelayError):
        return exc
    if isinstance(exc, asyncio.TimeoutError | aiohttp.ServerTimeoutError):
        if reading:
            return StreamInterruptedError("the upstream stopped sending (read timed out)")
        return ProviderTimeoutError("the upstream did not answer in time")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return ProviderUnavailableError(f"cannot connect to the upstream: {exc.os_error or exc}")
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
        return StreamInterruptedError("the upstream closed the connection mid-answer")
    if isinstance(exc, aiohttp.InvalidURL):
        return ProviderUnavailableError(f"invalid upstream URL: {exc}")
    if isinstance(exc, aiohttp.ClientError | OSError):
        return ProviderUnavailableError(f"upstream connection failed: {exc}")
    return ProviderUnavailableError(f"upstream request failed: {type(exc).__name__}: {exc}")


class AiohttpTransport:
    """A pooled aiohttp client. Create one per provider and close it on shutdown.

    The session is created lazily inside the running loop (aiohttp requires it).

    A full pool makes requests wait in FIFO order for a connection (bounded by the caller's
    deadline), never fail. aiohttp's own connector limit is not fair: a new request takes a
    connection just released while older waiters are still being woken, so under more concurrent
    streams than connections some requests starved past any timeout (the 1,000-client soak,
    benchmarks/results/soak.md). The gate below (an asyncio.Semaphore, FIFO since 3.11) hands
    out the slots in arrival order; the connector limit stays as a backstop.
    """

    def __init__(self, limits: PoolLimits | None = None) -> None:
        self._limits = limits or PoolLimits()
        self._session: Any = None
        self._gate: asyncio.Semaphore | None = None
        self._timeouts: dict[float | None, Any] = {}

    def _get_session(self) -> Any:
        if self._session is None or self._session.closed:
            import aiohttp

            lim = self._limits
            connector = aiohttp.TCPConnector(
                limit=lim.max_connections,
                limit_per_host=lim.max_connections_per_host,
                keepalive_timeout=lim.keepalive_s,
                enable_cleanup_closed=True,
                ttl_dns_cache=300,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=lim.connect_timeout_s),
                auto_decompress=True,
                skip_auto_headers=("User-Agent",),
                # No cookies: a gateway must not carry one caller's upstream cookies to the next,
                # and the jar's per-request filter/update was measurable work for nothing.
                cookie_jar=aiohttp.DummyCookieJar(),
            )
            # A new session may live in a new event loop: the gate is made with it.
            self._gate = asyncio.Semaphore(lim.max_connections) if lim.max_connections > 0 else None
        return self._session

    def _timeout(self, read_timeout: float | None) -> Any:
        # One ClientTimeout per distinct read timeout (a provider has one or two), not per request.
        timeout = self._timeouts.get(read_timeout)
        if timeout is None:
            import aiohttp

            timeout = aiohttp.ClientTimeout(
                total=None, sock_connect=self._limits.connect_timeout_s, sock_read=read_timeout
            )
            if len(self._timeouts) < 64:
                self._timeouts[read_timeout] = timeout
        return timeout

    async def send(self, request: HTTPRequest) -> HTTPResponse:
        session = self._get_session()
        gate = self._gate
        if gate is not None:
            await gate.acquire()
        try:
            resp = await session.request(
                request.method,
                request.url,
                data=request.body,
                headers=request.headers,
                timeout=self._timeout(request.read_timeout),
                allow_redirects=False,
            )
        except BaseException as exc:
            if gate is not None:
                gate.release()
            if isinstance(exc, Exception):
                raise _convert(exc) from exc
            raise
        return _AiohttpResponse(resp, gate)

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()


# ---------------------------------------------------------------------------------------- mock


@dataclass(slots=True)
class MockResponse:
    """A canned response. ``body`` may be bytes, or an iterable of byte pieces (a stream); an
    exception instance among the pieces is raised at that point (a dropped connection)."""

    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | Iterable[bytes | BaseException] = b""

    def __post_init__(self) -> None:
        self.headers = {k.lower(): v for k, v in self.headers.items()}

    async def _pieces(self) -> AsyncIterator[bytes]:
        if isinstance(self.body, bytes | bytearray):
            yield bytes(self.body)
            return
        for piece in self.body:
            if isinstance(piece, BaseException):
                raise piece
            yield piece
            await asyncio.sleep(0)

    async def read(self) -> bytes:
        return b"".join([p async for p in self._pieces()])

    def aiter_lines(self) -> AsyncIterator[bytes]:
        return split_lines(self._pieces())

    async def aclose(self) -> None:
        return None


MockHandler = Callable[[HTTPRequest], "MockResponse | Awaitable[MockResponse]"]


class MockTransport:
    """A transport that answers every request by calling ``handler`` (sync or async).
    Sent requests are kept in ``requests`` for assertions."""

    def __init__(self, handler: MockHandler) -> None:
        self._handler = handler
        self.requests: list[HTTPRequest] = []

    async def send(self, request: HTTPRequest) -> HTTPResponse:
        self.requests.append(request)
        result = self._handler(request)
        if asyncio.iscoroutine(result) or isinstance(result, Awaitable):
            result = await result
        assert isinstance(result, MockResponse)
        return result

    async def aclose(self) -> None:
        return None
