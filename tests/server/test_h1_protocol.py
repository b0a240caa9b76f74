"""llmrelay's HTTP/1.1 protocol on raw sockets, each case also run on uvicorn's httptools protocol
so the two agree (pipelining, 100-continue, chunked bodies, HTTP/1.0, HEAD, keep-alive timeout,
parse errors, disconnects, header injection, app errors, graceful shutdown)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn
from tests.conftest import uvicorn_serving

from llmrelay.server.h1_protocol import H1Protocol, server_options

PROTOCOLS = ("llmrelay", "httptools")
WAIT_S = 5.0


@dataclass
class App:
    """A small ASGI app whose routes exercise the protocol; it records what it saw."""

    disconnected: threading.Event = field(default_factory=threading.Event)
    entered: threading.Event = field(default_factory=threading.Event)
    late_send_errors: list[BaseException] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        route = getattr(self, "r_" + scope["path"].strip("/").replace("-", "_"), self.r_echo)
        await route(scope, receive, send)

    async def _read(self, receive: Any) -> bytes:
        parts = []
        while True:
            message = await receive()
            parts.append(message.get("body", b""))
            if not message.get("more_body"):
                return b"".join(parts)

    async def r_echo(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = await self._read(receive)
        self.bodies.append(body)
        answer = b"%s %s %s|" % (scope["method"].encode(), scope["raw_path"], scope["query_string"]) + body
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(answer))]})
        await send({"type": "http.response.body", "body": answer})

    async def r_client(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        answer = b"%s %s" % (scope["client"][0].encode(), scope["scheme"].encode())
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(answer))]})
        await send({"type": "http.response.body", "body": answer})

    async def r_stream(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        for i in range(3):
            await send({"type": "http.response.body", "body": b"data: %d\n\n" % i, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    async def r_forever(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            self.disconnected.set()

        watcher = asyncio.ensure_future(watch())
        await send({"type": "http.response.start", "status": 200, "headers": []})
        late = 0
        while late < 3:
            try:
                await send({"type": "http.response.body", "body": b"tick\n", "more_body": True})
            except BaseException as exc:  # a send after the client left must be ignored, not raise
                self.late_send_errors.append(exc)
                raise
            late += watcher.done()
            await asyncio.sleep(0.005)

    async def r_slow(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.entered.set()
        await asyncio.sleep(0.3)
        await self.r_echo(scope, receive, send)

    async def r_fail_before(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        raise RuntimeError("boom before the response")

    async def r_fail_after(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"100")]})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise RuntimeError("boom mid-response")

    async def r_inject(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"x-note", b"a\r\nx-evil: 1"), (b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})


@contextlib.contextmanager
def serving(app: App, protocol: str, **options: Any) -> Iterator[uvicorn.Server]:
    """``app`` under uvicorn with ``protocol``; the server's ``port`` attribute is where it listens."""
    with uvicorn_serving(app, protocol, WAIT_S, log_level="critical", ws="none", **options) as (server, port):
        server.port = port
        yield server


class Client:
    """A raw socket with a response reader (content-length, chunked or read-to-close bodies)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT_S)
        self.buf = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _more(self) -> bool:
        data = self.sock.recv(65536)
        self.buf += data
        return bool(data)

    def _take(self, n: int) -> bytes:
        while len(self.buf) < n:
            assert self._more(), "the connection closed mid-response"
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            assert self._more(), "the connection closed mid-line"
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def head(self) -> tuple[int, dict[bytes, bytes]]:
        status = int(self._line().split()[1])
        headers: dict[bytes, bytes] = {}
        while line := self._line():
            name, value = line.split(b":", 1)
            headers[name.strip().lower()] = value.strip()
        return status, headers

    def response(self, method: bytes = b"GET") -> tuple[int, dict[bytes, bytes], bytes]:
        status, headers = self.head()
        if method == b"HEAD" or status in (204, 304):
            return status, headers, b""
        if b"content-length" in headers:
            return status, headers, self._take(int(headers[b"content-length"]))
        if headers.get(b"transfer-encoding") == b"chunked":
            body = b""
            while size := int(self._line(), 16):
                body += self._take(size)
                assert self._take(2) == b"\r\n"
            assert self._line() == b""
            return status, headers, body
        while self._more():
            pass
        body, self.buf = self.buf, b""
        return status, headers, body

    def closed(self) -> bool:
        """True once the server has closed the connection (waits up to WAIT_S)."""
        try:
            return not self.buf and not self._more()
        except ConnectionResetError:
            return True

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(params=PROTOCOLS)
def protocol(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def app() -> App:
    return App()


@pytest.fixture
def client(app: App, protocol: str) -> Iterator[Client]:
    with serving(app, protocol) as server:
        c = Client(server.port)  # type: ignore[attr-defined]
        yield c
        c.close()


def post(path: bytes, body: bytes, extra: bytes = b"") -> bytes:
    return b"POST %s HTTP/1.1\r\nhost: t\r\ncontent-length: %d\r\n%s\r\n%s" % (path, len(body), extra, body)


def test_server_options_pick_the_protocol() -> None:
    assert server_options("llmrelay")["http"] is H1Protocol
    assert server_options("httptools")["http"] == "httptools"
    assert server_options()["http"] is H1Protocol  # the config default


def test_pipelined_requests_are_answered_in_order(client: Client) -> None:
    client.send(post(b"/echo", b"one") + post(b"/slow", b"two") + post(b"/echo?x=1", b"three"))
    bodies = [client.response()[2] for _ in range(3)]
    assert bodies == [b"POST /echo |one", b"POST /slow |two", b"POST /echo x=1|three"]


def test_expect_100_continue_then_the_body(client: Client) -> None:
    client.send(b"POST /echo HTTP/1.1\r\nhost: t\r\ncontent-length: 5\r\nexpect: 100-continue\r\n\r\n")
    status, _ = client.head()
    assert status == 100
    client.send(b"hello")
    assert client.response()[::2] == (200, b"POST /echo |hello")


def test_chunked_request_body_is_reassembled(client: Client, app: App) -> None:
    client.send(b"POST /echo HTTP/1.1\r\nhost: t\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n")
    client.send(b"6\r\n world\r\n0\r\n\r\n")
    assert client.response()[2] == b"POST /echo |hello world"
    assert app.bodies == [b"hello world"]


def test_large_body_is_read_whole(client: Client) -> None:
    body = bytes(range(256)) * 8192  # 2 MiB: reading pauses and resumes many times
    client.send(post(b"/echo", body))
    assert client.response()[2] == b"POST /echo |" + body


def test_http_10_answer_then_close(client: Client) -> None:
    client.send(b"GET /echo HTTP/1.0\r\n\r\n")
    status, _headers, body = client.response()
    assert (status, body) == (200, b"GET /echo |")
    assert client.closed()


def test_connection_close_is_honoured(client: Client) -> None:
    client.send(b"GET /echo HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n")
    status, headers, _ = client.response()
    assert status == 200 and headers[b"connection"] == b"close"
    assert client.closed()


def test_head_sends_no_body_and_keeps_the_connection(client: Client) -> None:
    client.send(b"HEAD /echo HTTP/1.1\r\nhost: t\r\n\r\n")
    status, headers, _ = client.response(b"HEAD")
    assert status == 200 and headers[b"content-length"] == b"%d" % len(b"HEAD /echo |")
    client.send(b"GET /echo HTTP/1.1\r\nhost: t\r\n\r\n")
    assert client.response()[2] == b"GET /echo |"  # nothing of the HEAD body was left on the wire


def test_chunked_response_without_content_length(client: Client) -> None:
    client.send(b"GET /stream HTTP/1.1\r\nhost: t\r\n\r\n")
    _status, headers, body = client.response()
    assert headers[b"transfer-encoding"] == b"chunked"
    assert body == b"data: 0\n\ndata: 1\n\ndata: 2\n\n"
    client.send(b"GET /echo HTTP/1.1\r\nhost: t\r\n\r\n")
    assert client.response()[0] == 200


def test_parse_error_is_400_and_close(client: Client) -> None:
    client.send(b"NOT AN HTTP REQUEST\x00\r\n\r\n")
    status, headers, body = client.response()
    assert status == 400 and headers[b"connection"] == b"close" and body
    assert client.closed()


def test_app_error_before_the_start_is_500(client: Client) -> None:
    client.send(b"GET /fail-before HTTP/1.1\r\nhost: t\r\n\r\n")
    status, _, body = client.response()
    assert (status, body) == (500, b"Internal Server Error")


def test_app_error_after_the_start_closes_the_connection(client: Client) -> None:
    client.send(b"GET /fail-after HTTP/1.1\r\nhost: t\r\n\r\n")
    status, headers = client.head()
    assert status == 200
    while client._more():
        pass
    assert len(client.buf) < int(headers[b"content-length"])  # cut short, then closed


def test_header_injection_is_refused(client: Client) -> None:
    client.send(b"GET /inject HTTP/1.1\r\nhost: t\r\n\r\n")
    received = b""
    with contextlib.suppress(ConnectionResetError):
        while data := client.sock.recv(65536):
            received += data
    assert b"x-evil" not in received


def test_upgrade_request_is_answered_as_plain_http(client: Client) -> None:
    client.send(b"GET /echo HTTP/1.1\r\nhost: t\r\nconnection: upgrade\r\nupgrade: websocket\r\n"
                b"sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n")
    status, _, body = client.response()
    assert (status, body) == (200, b"GET /echo |")


def test_client_gone_mid_stream_is_a_disconnect_and_later_sends_are_ignored(client: Client, app: App) -> None:
    client.send(b"GET /forever HTTP/1.1\r\nhost: t\r\n\r\n")
    assert client.head()[0] == 200
    client._take(4)
    client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    client.close()
    assert app.disconnected.wait(WAIT_S)
    time.sleep(0.05)  # the app's three sends after the disconnect
    assert app.late_send_errors == []


def test_keep_alive_timeout_closes_an_idle_connection(app: App, protocol: str) -> None:
    with serving(app, protocol, timeout_keep_alive=1) as server:
        c = Client(server.port)  # type: ignore[attr-defined]
        c.send(b"GET /echo HTTP/1.1\r\nhost: t\r\n\r\n")
        assert c.response()[0] == 200
        started = time.monotonic()
        assert c.closed()
        assert time.monotonic() - started >= 0.9  # not before the timeout
        c.close()


def test_graceful_shutdown_finishes_the_request_in_flight(app: App, protocol: str) -> None:
    with serving(app, protocol) as server:
        c = Client(server.port)  # type: ignore[attr-defined]
        c.send(post(b"/slow", b"last"))
        assert app.entered.wait(WAIT_S)
        server.should_exit = True
        status, _headers, body = c.response()
        assert (status, body) == (200, b"POST /slow |last")
        assert c.closed()
        c.close()


def test_idle_connection_is_closed_on_shutdown(app: App, protocol: str) -> None:
    with serving(app, protocol) as server:
        c = Client(server.port)  # type: ignore[attr-defined]
        c.send(b"GET /echo HTTP/1.1\r\nhost: t\r\n\r\n")
        assert c.response()[0] == 200
        server.should_exit = True
        assert c.closed()
        c.close()


def test_forwarded_headers_from_a_trusted_proxy_set_client_and_scheme(client: Client) -> None:
    client.send(b"GET /client HTTP/1.1\r\nhost: t\r\nx-forwarded-for: 10.1.2.3\r\nx-forwarded-proto: https\r\n\r\n")
    assert client.response()[2] == b"10.1.2.3 https"
    client.send(b"GET /client HTTP/1.1\r\nhost: t\r\n\r\n")  # the next request on the connection: its own
    assert client.response()[2] == b"127.0.0.1 http"
