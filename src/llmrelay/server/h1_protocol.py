"""llmrelay's HTTP/1.1 protocol for uvicorn: the per-request work of uvicorn's httptools protocol, leaner.

uvicorn keeps the sockets, workers, signals, lifespan and graceful shutdown; this protocol parses
requests (httptools), calls the ASGI app and writes its answer. It spends less per request than
uvicorn's own (benchmarks/results/PROFILE.md, round thirteen, H1): a small scope dict (``state``
only when the lifespan put something in it), one keep-alive timer per connection re-armed lazily,
response headers checked for CR/LF/NUL with three C scans of the whole block instead of a regex
per header, a fixed-length response's head and body written in one ``transport.write``, and
uvicorn's X-Forwarded-* middleware run only for the requests that carry such a header (it does
nothing for the others).

    import uvicorn
    from llmrelay.server.h1_protocol import H1Protocol
    uvicorn.run(app, loop="uvloop", http=H1Protocol)          # or **server_options()

Semantics follow uvicorn's httptools protocol: pipelined requests in order, ``Expect:
100-continue``, chunked request bodies, HTTP/1.0 and ``Connection: close``, HEAD, 400 and close on
a parse error, 500 for an app error before the response start (close after it), ``http.disconnect``
once the client is gone (a later ``send`` is ignored), chunked responses without content-length.
Differences: an upgrade request (websocket) is served as plain HTTP and the connection closed (the
gateway serves no websockets); an HTTP/1.0 client gets a close-delimited body, never chunked; a
connection that sends nothing is closed after the keep-alive timeout too.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections import deque
from typing import Any
from urllib.parse import unquote

import httptools

from .h1_exchange import STATUS_LINES, App, Exchange

# Unread request body held before the socket stops being read (uvicorn's HIGH_WATER_LIMIT).
READ_HIGH_WATER = 65536
_WATCHED = frozenset({b"expect", b"x-forwarded-for", b"x-forwarded-proto"})
_BAD_REQUEST = b"Invalid HTTP request received."


def server_options(http_protocol: str | None = None) -> dict[str, Any]:
    """The uvicorn options every llmrelay server starts with (``llmrelay serve``, the tests):
    uvloop and ``http_protocol`` ("llmrelay" = :class:`H1Protocol`, "httptools" = uvicorn's own;
    None = the config default, ``server.http_protocol``)."""
    if http_protocol is None:
        from ..config import ServerConfig

        http_protocol = str(ServerConfig.model_fields["http_protocol"].default)
    http_class: Any = H1Protocol if http_protocol == "llmrelay" else "httptools"
    return {"loop": "uvloop", "http": http_class, "lifespan": "on"}


class H1Protocol(asyncio.Protocol):
    """One HTTP/1.1 connection; uvicorn makes one per accepted socket: ``(config, server_state,
    app_state, _loop)``. See the module docstring."""

    __slots__ = ("_asgi", "_client", "_dh_bytes", "_dh_src", "_drainers", "_expect", "_headers", "_idle_since",
                 "_proxied", "_root_path", "_server", "_timer", "_url", "access_log", "active", "app",
                 "app_state", "config", "connections", "keep_alive_s", "limit", "logger", "loop", "parser",
                 "parsing", "pipeline", "proxy_app", "read_paused", "scheme", "server_state", "tasks",
                 "transport", "write_paused")

    def __init__(self, config: Any, server_state: Any, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        if not config.loaded:
            config.load()
        self.config = config
        self.app, self.proxy_app = _unwrap_proxy(config.loaded_app)
        self.loop = _loop or asyncio.get_event_loop()
        self.logger = logging.getLogger("uvicorn.error")
        self.access_log = logging.getLogger("uvicorn.access").hasHandlers()
        self.app_state = app_state
        self.server_state = server_state
        self.connections: set[Any] = server_state.connections
        self.tasks: set[asyncio.Task[None]] = server_state.tasks
        self.keep_alive_s = float(config.timeout_keep_alive)
        self.limit: int | None = config.limit_concurrency
        self._root_path: str = config.root_path
        self._asgi = {"version": config.asgi_version, "spec_version": "2.3"}
        self.parser = httptools.HttpRequestParser(self)
        # Answer the first of pipelined requests that end with Connection: close (as uvicorn does).
        self.parser.set_dangerous_leniencies(lenient_data_after_close=True)
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self._server: tuple[str, int] | None = None
        self._client: tuple[str, int] | None = None
        self.scheme = "http"
        self.active: Exchange | None = None  # the exchange the app runs now
        self.parsing: Exchange | None = None  # the exchange whose request is being parsed
        self.pipeline: deque[tuple[Exchange, App]] = deque()
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._expect = self._proxied = False
        self.read_paused = self.write_paused = False
        self._drainers: list[asyncio.Future[None]] = []
        self._idle_since: float | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._dh_src: list[tuple[bytes, bytes]] | None = None
        self._dh_bytes = b""

    # ------------------------------------------------------------------ connection events

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.connections.add(self)
        self.transport = transport  # type: ignore[assignment]
        self._server = _address(transport.get_extra_info("sockname"))
        self._client = _address(transport.get_extra_info("peername"))
        if transport.get_extra_info("sslcontext") is not None:
            self.scheme = "https"
        self._arm_idle()

    def connection_lost(self, exc: Exception | None) -> None:
        self.connections.discard(self)
        for exchange in (self.active, self.parsing, *(e for e, _ in self.pipeline)):
            if exchange is not None:
                exchange.lost()
        # Break the protocol's cycles (parser callbacks, the exchange) so refcounting frees them.
        self.pipeline.clear()
        self.active = self.parsing = None
        self.parser = None  # type: ignore[assignment]
        self.write_paused = False
        self._wake_drainers()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if exc is None:
            self.transport.close()

    def eof_received(self) -> None:
        return None  # the transport closes itself (as in uvicorn)

    def data_received(self, data: bytes) -> None:
        self._idle_since = None
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._refuse_upgrade()
        except httptools.HttpParserError:
            self.logger.warning("Invalid HTTP request received.")
            self._bad_request()

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        self._wake_drainers()

    def shutdown(self) -> None:
        """uvicorn's graceful shutdown: close an idle connection, let a busy one finish its answer."""
        active = self.active
        if active is None or active.complete:
            self.transport.close()
        else:
            active.keep_alive = False

    # ------------------------------------------------------------------ parser callbacks

    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = []
        self._expect = self._proxied = False

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        self._headers.append((name, value))
        if name in _WATCHED:
            if name == b"expect":
                self._expect = value.lower() == b"100-continue"
            else:
                self._proxied = True

    def on_headers_complete(self) -> None:
        parser = self.parser
        version = parser.get_http_version()
        exchange = Exchange(self, self._scope(parser.get_method().decode("ascii"), version),
                            version != "1.0" and parser.should_keep_alive(), self._expect)
        if parser.should_upgrade():
            exchange.keep_alive = False  # the parser stops at an upgrade: answer it, then close
        app = self.proxy_app if self._proxied and self.proxy_app is not None else self.app
        if self.limit is not None and (len(self.connections) >= self.limit or len(self.tasks) >= self.limit):
            from uvicorn.protocols.http.flow_control import service_unavailable

            self.logger.warning("Exceeded concurrency limit.")
            app = service_unavailable
        self.parsing = exchange
        active = self.active
        if active is None or active.complete:
            self._start(exchange, app)
        else:  # pipelined: served once the current answer is complete
            self._pause_reading()
            self.pipeline.append((exchange, app))

    def on_body(self, body: bytes) -> None:
        exchange = self.parsing
        if exchange is None or exchange.complete:
            return  # the app answered without reading it all: the rest is dropped
        exchange.body += body
        if len(exchange.body) > READ_HIGH_WATER:
            self._pause_reading()
        exchange.wake()

    def on_message_complete(self) -> None:
        exchange = self.parsing
        if exchange is not None and not exchange.complete:
            exchange.more_body = False
            exchange.wake()

    # ------------------------------------------------------------------ helpers

    def _scope(self, method: str, version: str) -> dict[str, Any]:
        url = self._url
        if url[:1] == b"/" and b"#" not in url:
            raw_path, _, query = url.partition(b"?")
        else:  # absolute form (a proxy's request line) or a fragment
            parsed = httptools.parse_url(url)
            raw_path, query = parsed.path or b"/", parsed.query or b""
        path = raw_path.decode("ascii")
        if "%" in path:
            path = unquote(path)
        root = self._root_path
        scope = {"type": "http", "asgi": self._asgi, "http_version": version, "server": self._server,
                 "client": self._client, "scheme": self.scheme, "method": method, "root_path": root,
                 "path": root + path if root else path,
                 "raw_path": root.encode("ascii") + raw_path if root else raw_path,
                 "query_string": query, "headers": self._headers}
        if self.app_state:  # ASGI lifespan state: a shallow copy per request, only when there is some
            scope["state"] = self.app_state.copy()
        return scope

    def _start(self, exchange: Exchange, app: App) -> None:
        self.active = exchange
        if getattr(self.config, "reset_contextvars", False):
            task = self.loop.create_task(exchange.run(app), context=contextvars.Context())
        else:
            task = self.loop.create_task(exchange.run(app))
        task.add_done_callback(self.tasks.discard)
        self.tasks.add(task)

    def response_done(self) -> None:
        """The active exchange's answer is complete: serve the next pipelined request, or go idle."""
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self._resume_reading()
        if self.pipeline:
            self._start(*self.pipeline.popleft())
        else:
            self._arm_idle()

    def _arm_idle(self) -> None:
        # One timer per connection: data_received only clears _idle_since; when the timer fires it
        # closes the connection if it has stayed idle, or re-arms itself for the idle start.
        self._idle_since = now = self.loop.time()
        if self._timer is None:
            self._timer = self.loop.call_at(now + self.keep_alive_s, self._on_idle_timer)

    def _on_idle_timer(self) -> None:
        self._timer = None
        since = self._idle_since
        if since is None or self.transport.is_closing():
            return  # busy: re-armed when the answer is complete
        due = since + self.keep_alive_s
        if self.loop.time() >= due:
            self.transport.close()
        else:
            self._timer = self.loop.call_at(due, self._on_idle_timer)

    def _pause_reading(self) -> None:
        if not self.read_paused:
            self.read_paused = True
            self.transport.pause_reading()

    def _resume_reading(self) -> None:
        if self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()

    async def drain(self) -> None:
        waiter = self.loop.create_future()
        self._drainers.append(waiter)
        await waiter

    def _wake_drainers(self) -> None:
        drainers, self._drainers = self._drainers, []
        for waiter in drainers:
            if not waiter.done():
                waiter.set_result(None)

    def default_headers(self) -> bytes:
        """uvicorn's ``server`` / ``date`` headers as bytes; uvicorn replaces the list once a second."""
        source = self.server_state.default_headers
        if source is not self._dh_src:
            self._dh_src = source
            self._dh_bytes = b"".join(b"%s: %s\r\n" % (name, value) for name, value in source)
        return self._dh_bytes

    def _bad_request(self) -> None:
        active = self.active
        if active is None or active.complete:
            self.transport.write(b"".join((
                STATUS_LINES[400], self.default_headers(), b"content-type: text/plain; charset=utf-8\r\n",
                b"content-length: %d\r\nconnection: close\r\n\r\n" % len(_BAD_REQUEST), _BAD_REQUEST)))
        self.transport.close()

    def _refuse_upgrade(self) -> None:
        # The gateway serves no websockets: the request is answered as plain HTTP (its exchange was
        # started with keep_alive off) and nothing after it is parsed.
        self.logger.warning("Unsupported upgrade request.")
        exchange = self.parsing
        if exchange is not None and exchange.more_body and not exchange.complete:
            exchange.more_body = False
            exchange.wake()
        self._pause_reading()


def _unwrap_proxy(app: App) -> tuple[App, App | None]:
    """uvicorn's X-Forwarded-* middleware (on by default) changes nothing for a request without
    those headers: run the app directly for those, the middleware only for the others."""
    from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

    if isinstance(app, ProxyHeadersMiddleware):
        return app.app, app
    return app, None


def _address(info: Any) -> tuple[str, int] | None:
    if isinstance(info, tuple | list) and len(info) >= 2:
        return str(info[0]), int(info[1])
    return None


