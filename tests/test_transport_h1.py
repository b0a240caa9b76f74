"""H1Transport's HTTP/1.1 handling against scripted servers on 127.0.0.1: keep-alive reuse, a
connection the server closed while idle, answers framed by length, chunks or the connection's end,
gzip, stalls, header injection, large bodies and slow readers, and abandoned answers."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from types import MappingProxyType

import pytest

from llmrelay.errors import ProviderTimeoutError, ProviderUnavailableError, StreamInterruptedError
from llmrelay.transport import HTTPRequest, PoolLimits
from llmrelay.transport_h1 import H1Transport

# (request body, writer) -> None: writes the answer; may close the connection.
Answer = Callable[[bytes, asyncio.StreamWriter], Awaitable[None]]


@dataclass
class Scripted:
    answer: Answer
    port: int = 0
    connections: int = 0
    heads: list[bytes] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                self.heads.append(head)
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                await self.answer(await reader.readexactly(length), writer)
                if writer.is_closing():
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


Serve = Callable[[Answer], Awaitable[Scripted]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    servers: list[asyncio.Server] = []

    async def start(answer: Answer) -> Scripted:
        srv = Scripted(answer)
        s = await asyncio.start_server(srv.handle, "127.0.0.1", 0)
        servers.append(s)
        srv.port = s.sockets[0].getsockname()[1]
        return srv

    yield start
    for s in servers:
        s.close()


def _post(port: int, body: bytes, read_timeout: float | None = 5, headers: dict[str, str] | None = None
          ) -> HTTPRequest:
    return HTTPRequest("POST", f"http://127.0.0.1:{port}/v1/x?a=1", headers or {"content-type": "application/json"},
                       body, read_timeout=read_timeout)


async def _echo(body: bytes, w: asyncio.StreamWriter) -> None:
    w.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))
    await w.drain()


async def test_sequential_requests_share_one_connection_and_send_a_plain_head(serve: Serve) -> None:
    srv = await serve(_echo)
    t = H1Transport(PoolLimits(max_connections=4))
    try:
        async with asyncio.timeout(10):
            for i in range(5):
                resp = await t.send(_post(srv.port, b'{"i":%d}' % i, headers={"authorization": "Bearer k"}))
                assert resp.status == 200 and resp.headers["content-type"] == "application/json"
                assert await resp.read() == b'{"i":%d}' % i
    finally:
        await t.aclose()
    assert srv.connections == 1
    lines = srv.heads[0].split(b"\r\n")
    assert lines[0] == b"POST /v1/x?a=1 HTTP/1.1"
    assert f"host: 127.0.0.1:{srv.port}".encode() in lines
    assert b"authorization: Bearer k" in lines and b"content-length: %d" % len(b'{"i":0}') in lines


async def test_a_get_has_no_body_and_no_length(serve: Serve) -> None:
    srv = await serve(_echo)
    t = H1Transport()
    try:
        resp = await t.send(HTTPRequest("GET", f"http://127.0.0.1:{srv.port}/v1/models", {"x-k": "v"}))
        assert resp.status == 200 and await resp.read() == b""
    finally:
        await t.aclose()
    assert srv.heads == [b"GET /v1/models HTTP/1.1\r\nhost: 127.0.0.1:%d\r\nx-k: v\r\n\r\n" % srv.port]


async def test_a_connection_closed_while_idle_is_replaced(serve: Serve) -> None:
    async def once(body: bytes, w: asyncio.StreamWriter) -> None:
        await _echo(body, w)
        w.close()  # keep-alive announced, but the server drops it after each answer

    srv = await serve(once)
    t = H1Transport()
    try:
        async with asyncio.timeout(10):
            for i in range(3):
                resp = await t.send(_post(srv.port, str(i).encode()))
                assert await resp.read() == str(i).encode()
    finally:
        await t.aclose()
    assert srv.connections == 3


async def test_answers_framed_by_chunks_or_by_the_connection_end(serve: Serve) -> None:
    async def answer(body: bytes, w: asyncio.StreamWriter) -> None:
        if body == b"chunked":
            parts = (b"data: 1\n", b"\ndata: ", b"2\n\n")
            w.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
                    + b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n")
        else:  # HTTP/1.0 style: no length, the body ends when the connection does
            w.write(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nline one\nline two")
            await w.drain()
            w.close()

    srv = await serve(answer)
    t = H1Transport()
    try:
        async with asyncio.timeout(10):
            chunked = await t.send(_post(srv.port, b"chunked"))
            assert [x async for x in chunked.aiter_lines()] == [b"data: 1", b"", b"data: 2", b""]
            eof = await t.send(_post(srv.port, b"eof"))
            assert [x async for x in eof.aiter_lines()] == [b"line one", b"line two"]
            again = await t.send(_post(srv.port, b"eof"))
            assert await again.read() == b"line one\nline two"
    finally:
        await t.aclose()


async def test_an_interim_answer_then_a_whole_stream_in_one_write_or_trickled(serve: Serve) -> None:
    # The body callback keeps the chunks of the real answer only (not a 100 Continue's), in order,
    # whether they all come with the head (one data_received) or one by one after it.
    events = [b"data: %d\n\n" % i for i in range(40)]
    framed = b"".join(b"%x\r\n%s\r\n" % (len(e), e) for e in events) + b"0\r\n\r\n"
    head = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"

    async def answer(body: bytes, w: asyncio.StreamWriter) -> None:
        if body == b"burst":
            w.write(head + framed)
            return
        w.write(head)
        await w.drain()
        for i, e in enumerate(events):
            w.write(b"%x\r\n%s\r\n" % (len(e), e))
            await w.drain()
            await read[i].wait()  # the next event only once this one reached the reader
        w.write(b"0\r\n\r\n")

    read: list[asyncio.Event] = []
    srv = await serve(answer)
    t = H1Transport()
    want = [line for e in events for line in e.split(b"\n")[:2]]
    try:
        async with asyncio.timeout(10):
            for body in (b"burst", b"trickle", b"burst"):
                read[:] = [asyncio.Event() for _ in events]
                resp = await t.send(_post(srv.port, body))
                assert resp.status == 200
                got = []
                async for x in resp.aiter_lines():
                    got.append(x)
                    if x:  # (trickled) each chunk wakes the reader as it comes, not the body's end
                        read[int(x.split()[1])].set()
                assert got == want
        assert srv.connections == 1  # every answer read to its end: the connection was reused
    finally:
        await t.aclose()


async def test_a_gzip_answer_is_decoded(serve: Serve) -> None:
    payload = b'{"text": "%s"}' % (b"abc " * 5000)

    async def answer(body: bytes, w: asyncio.StreamWriter) -> None:
        z = gzip.compress(payload)
        w.write(b"HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\ncontent-length: %d\r\n\r\n%s" % (len(z), z))

    srv = await serve(answer)
    t = H1Transport()
    try:
        resp = await t.send(_post(srv.port, b"x"))
        assert await resp.read() == payload
    finally:
        await t.aclose()


async def test_stalls_are_timeouts(serve: Serve) -> None:
    async def answer(body: bytes, w: asyncio.StreamWriter) -> None:
        if body == b"half":
            w.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly part")
        await asyncio.sleep(5)

    srv = await serve(answer)
    t = H1Transport(PoolLimits(max_connections=1))
    try:
        async with asyncio.timeout(10):
            # 0.5 s, still far below the server's 5 s stall: with 0.1 s a busy machine (a GC pause)
            # could expire the head's read before the server, on this same loop, had written it.
            with pytest.raises(ProviderTimeoutError):
                await t.send(_post(srv.port, b"nothing", read_timeout=0.5))
            resp = await t.send(_post(srv.port, b"half", read_timeout=0.5))
            with pytest.raises(StreamInterruptedError):
                await resp.read()
    finally:
        await t.aclose()


async def test_the_read_timeout_is_per_wait_not_per_answer(serve: Serve) -> None:
    # One timer per answer, checked against the current wait's start: an answer longer than the
    # timeout whose pieces come more often than it is not a stall; a gap longer than it is.
    async def answer(body: bytes, w: asyncio.StreamWriter) -> None:
        w.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        gaps = [0.25] * 8 if body == b"steady" else [0.05, 0.05, 2.5]
        for i, gap in enumerate(gaps):
            await asyncio.sleep(gap)
            w.write(b"%x\r\n%s\r\n" % (len(b"data: %d\n\n" % i), b"data: %d\n\n" % i))
            await w.drain()
        w.write(b"0\r\n\r\n")

    srv = await serve(answer)
    t = H1Transport()
    try:
        async with asyncio.timeout(10):
            # 2 s of answer in pieces 0.25 s apart, against a 0.75 s timeout (3x the gap, for a
            # busy machine): the timer set at the first wait fires mid-answer and is set again.
            steady = await t.send(_post(srv.port, b"steady", read_timeout=0.75))
            lines = [x async for x in steady.aiter_lines()]
            assert [x for x in lines if x] == [b"data: %d" % i for i in range(8)]
            gap = await t.send(_post(srv.port, b"gap", read_timeout=0.75))
            with pytest.raises(StreamInterruptedError):
                [x async for x in gap.aiter_lines()]
    finally:
        await t.aclose()


async def test_a_line_break_in_a_header_is_refused(serve: Serve) -> None:
    srv = await serve(_echo)
    t = H1Transport()
    with pytest.raises(ProviderUnavailableError):
        await t.send(_post(srv.port, b"x", headers={"x-a": "1\r\nx-injected: yes"}))
    assert srv.heads == []


async def test_read_only_headers_are_encoded_once_and_plain_dicts_every_time(serve: Serve) -> None:
    # A provider hands out one MappingProxyType per kind of request: its lines are kept. A plain
    # dict may change between calls, so it is encoded anew each time.
    srv = await serve(_echo)
    t = H1Transport()
    fixed = MappingProxyType({"authorization": "Bearer k"})
    mutable = {"x-n": "1"}
    try:
        for i in range(2):
            await (await t.send(_post(srv.port, b"{}", headers=fixed))).read()  # type: ignore[arg-type]
            mutable["x-n"] = str(i + 1)
            await (await t.send(_post(srv.port, b"{}", headers=mutable))).read()
    finally:
        await t.aclose()
    assert [b"authorization: Bearer k" in h for h in srv.heads] == [True, False, True, False]
    assert [b"x-n: %d" % n in h for h, n in zip(srv.heads[1::2], (1, 2), strict=True)] == [True, True]
    assert len(t._heads) == 1 and next(iter(t._heads.values()))[0] is fixed


async def test_large_bodies_and_a_slow_reader(serve: Serve) -> None:
    big = bytes(range(256)) * 8192  # 2 MiB each way: the reader pauses the socket above its buffer

    srv = await serve(_echo)
    t = H1Transport()
    try:
        async with asyncio.timeout(20):
            resp = await t.send(_post(srv.port, big))
            await asyncio.sleep(0.2)  # let the answer pile up unread
            assert await resp.read() == big
            after = await t.send(_post(srv.port, b"after"))
            assert await after.read() == b"after"
    finally:
        await t.aclose()


async def test_an_abandoned_answer_closes_its_connection_and_frees_the_slot(serve: Serve) -> None:
    async def answer(body: bytes, w: asyncio.StreamWriter) -> None:
        w.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nfirst\r\n")
        await w.drain()
        await asyncio.sleep(5)

    srv = await serve(answer)
    t = H1Transport(PoolLimits(max_connections=1))
    try:
        async with asyncio.timeout(10):
            for _ in range(2):
                resp = await t.send(_post(srv.port, b"x"))
                lines = resp.aiter_lines()
                assert isinstance(lines, AsyncGenerator)
                reader: asyncio.Task[bytes] = asyncio.create_task(anext(lines))  # a line that never ends
                await asyncio.sleep(0.05)
                reader.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await reader
                await lines.aclose()
    finally:
        await t.aclose()
    assert srv.connections == 2  # the half-read connection was not reused


async def test_nobody_listening_is_unavailable() -> None:
    t = H1Transport(PoolLimits(max_connections=1, connect_timeout_s=2))
    for _ in range(2):  # the slot comes back each time
        with pytest.raises(ProviderUnavailableError):
            await t.send(_post(1, b"x"))


def test_it_runs_on_uvloop() -> None:
    # The gateway's loop: uvloop's transports are not asyncio.Transport subclasses.
    uvloop = pytest.importorskip("uvloop")

    async def main() -> bytes:
        srv = Scripted(_echo)
        s = await asyncio.start_server(srv.handle, "127.0.0.1", 0)
        t = H1Transport()
        try:
            async with s, asyncio.timeout(10):
                port = s.sockets[0].getsockname()[1]
                first = await (await t.send(_post(port, b"one"))).read()
                return first + await (await t.send(_post(port, b"two"))).read()
        finally:
            await t.aclose()

    loop = uvloop.new_event_loop()
    try:
        assert loop.run_until_complete(main()) == b"onetwo"
    finally:
        loop.close()


# ------------------------------------------------------------------------------------------- TLS


@pytest.fixture(scope="module")
def tls_ca() -> object:
    trustme = pytest.importorskip("trustme")
    return trustme.CA()


async def _serve_tls(ca: object, answer: Answer) -> tuple[Scripted, asyncio.Server]:
    import ssl

    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(server_ctx)  # type: ignore[attr-defined]
    srv = Scripted(answer)
    s = await asyncio.start_server(srv.handle, "127.0.0.1", 0, ssl=server_ctx)
    srv.port = s.sockets[0].getsockname()[1]
    return srv, s


async def test_https_upstream_is_verified_by_name_and_its_connection_kept_alive(tls_ca: object) -> None:
    import ssl

    srv, server = await _serve_tls(tls_ca, _echo)
    client_ctx = ssl.create_default_context()
    tls_ca.configure_trust(client_ctx)  # type: ignore[attr-defined]
    t = H1Transport(ssl_context=client_ctx)
    try:
        async with asyncio.timeout(10):
            for i in range(3):  # by host name (SNI + name check) and by address (an IP SAN)
                host = "localhost" if i % 2 == 0 else "127.0.0.1"
                resp = await t.send(HTTPRequest("POST", f"https://{host}:{srv.port}/v1/x", {}, b'{"i":%d}' % i,
                                                read_timeout=5))
                assert resp.status == 200 and await resp.read() == b'{"i":%d}' % i
    finally:
        await t.aclose()
        server.close()
    assert srv.connections == 2  # one per origin, each reused
    assert f"host: localhost:{srv.port}".encode() in srv.heads[0].split(b"\r\n")


async def test_https_upstream_with_an_untrusted_certificate_is_refused_clearly(tls_ca: object) -> None:
    srv, server = await _serve_tls(tls_ca, _echo)
    t = H1Transport()  # the system's CAs: they do not know this test CA
    try:
        async with asyncio.timeout(10):
            with pytest.raises(ProviderUnavailableError, match="certificate"):
                await t.send(HTTPRequest("POST", f"https://localhost:{srv.port}/v1/x", {}, b"{}", read_timeout=5))
    finally:
        await t.aclose()
        server.close()
    assert srv.heads == []  # nothing was sent over the unverified connection
