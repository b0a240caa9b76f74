"""The simulator as one raw ASGI application: routing, faults, statistics and the control endpoints.

No framework: a dict lookup routes a request, bodies are parsed once with orjson, and streams are
lists of pre-encoded frames, so the simulator stays much faster than anything it is used to measure.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

import orjson

from .answer import Options
from .exchange import Dialect, Exchange, Handler, Reply, SimError, dumps
from .faults import FAULT_KEYS, Fault, FaultSpecError, fault_from_items, parse_fault, split_model
from .stats import Stats

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
Sleep = Callable[[float], Awaitable[Any]]

REQUEST_LIMIT = 10_000
TOKEN_LIMIT = 2_000_000
_OPTION_HEADERS = {"words": "x-sim-words", "chunks": "x-sim-chunks", "tool_calls": "x-sim-tool-calls", "cached": "x-sim-cached"}
_HTML = (
    b"<html>\r\n<head><title>{status} Bad Gateway</title></head>\r\n<body>\r\n<center><h1>{status} Bad Gateway"
    b"</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)


def default_dialects() -> list[Dialect]:
    from .anthropic import AnthropicDialect
    from .gemini import GeminiDialect
    from .ollama import OllamaDialect
    from .openai import OpenAIDialect

    return [OpenAIDialect(), AnthropicDialect(), GeminiDialect(), OllamaDialect()]


class Simulator:
    """The ASGI app. ``seed`` seeds the RNG used by ``rate=`` faults; ``clock`` and ``sleep`` are injected.

        sim = Simulator(seed=7)
        uvicorn.run(sim, port=9000)
    """

    def __init__(
        self,
        *,
        seed: int | None = 0,
        clock: Callable[[], float] = time.time,
        sleep: Sleep = asyncio.sleep,
        dialects: Iterable[Dialect] | None = None,
    ) -> None:
        self.stats = Stats()
        self._clock = clock
        self._sleep = sleep
        self._rng = random.Random(seed)
        self._seed = seed
        self._header_seed: str | None = None
        self._defaults: dict[tuple[str, str | None], tuple[str, Fault]] = {}
        self._windows: dict[str, tuple[int, int]] = {}
        self._dialects = list(dialects) if dialects is not None else default_dialects()
        self._routes: dict[tuple[str, str], tuple[Dialect, Handler, str]] = {}
        for d in self._dialects:
            for (method, path), handler in d.routes().items():
                self._routes[(method, path)] = (d, handler, f"{d.name}.{handler.__name__}")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            while True:
                message = await receive()
                kind = message["type"].rsplit(".", 1)[-1]
                await send({"type": f"lifespan.{kind}.complete"})
                if kind == "shutdown":
                    return

    # ------------------------------------------------------------------------------ dispatch

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        method, path = scope["method"], scope["path"]
        raw = await _read_body(receive)
        if path.startswith("/_sim/"):
            status, obj = self._control(method, path, raw)
            await _send_plain(send, status, dumps(obj))
            return
        found = self._routes.get((method, path))
        params: dict[str, str] = {}
        if found is None:
            for d in self._dialects:
                hit = d.match(method, path)
                if hit is not None:
                    found, params = (d, hit[0], f"{d.name}.{hit[1]}"), hit[2]
                    break
        if found is None:
            body = {"error": {"message": f"no simulated route for {method} {path}", "type": "not_found"}}
            await _send_plain(send, 404, dumps(body))
            return
        ex = Exchange(method, path, _query(scope), _headers(scope), raw, None, now=self._clock(), params=params)
        await self._serve(found, ex, send)

    async def _serve(self, found: tuple[Dialect, Handler, str], ex: Exchange, send: Send) -> None:
        dialect, handler, route = found
        items: dict[str, str] = {}
        reply: Reply | None = None
        try:
            ex.body = orjson.loads(ex.raw) if ex.raw else None
        except orjson.JSONDecodeError as exc:
            reply = dialect.error(400, f"We could not parse the JSON body of your request: {exc}")
        full = dialect.model_of(ex) if reply is None else None
        if full is not None:
            ex.model, items = split_model(full)
        self.stats.begin(route, ex.model)
        try:
            fault: Fault | None = None
            if reply is None:
                reply, fault = await self._answer(dialect, handler, ex, items)
            if fault is not None:
                self.stats.fault(route)
            await self._send(send, reply, fault)
        finally:
            self.stats.end(route)

    async def _answer(
        self, dialect: Dialect, handler: Handler, ex: Exchange, items: dict[str, str]
    ) -> tuple[Reply, Fault | None]:
        try:
            ex.options = _options(items, ex.headers)
            fault = self._fault(dialect.name, ex.model, items, ex.headers)
            dialect.check_auth(ex)
        except FaultSpecError as exc:
            return dialect.error(400, str(exc)), None
        except SimError as exc:
            return dialect.error(exc.status, exc.message), None
        if fault is not None and fault.latency_ms:
            await self._sleep(fault.latency_ms / 1000)
        remaining, reset_s = self._window(dialect.name)
        if fault is not None and fault.kind == "status" and fault.status is not None:
            reply = dialect.error(fault.status, _fault_message(fault.status))
            if fault.status == 429:
                reply.headers += [(b"retry-after", _num(fault.retry_after))]
                reply.headers += dialect.rate_headers(0, fault.retry_after, 0, ex.now)
            return reply, fault
        if fault is not None and fault.kind == "html":
            status = fault.status or 502
            return Reply(status=status, body=_HTML.replace(b"{status}", str(status).encode()), content_type=b"text/html"), fault
        try:
            reply = await handler(ex)
        except SimError as exc:
            reply = dialect.error(exc.status, exc.message)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            reply = dialect.error(400, f"invalid request: {type(exc).__name__}: {exc}")
        reply.headers += dialect.rate_headers(remaining, reset_s, TOKEN_LIMIT - len(ex.raw) // 4, ex.now)
        return reply, fault

    def _fault(self, dialect: str, model: str | None, items: dict[str, str], headers: dict[str, str]) -> Fault | None:
        seed = headers.get("x-sim-seed")
        if seed is not None and seed != self._header_seed:
            self._header_seed = seed
            self._rng.seed(seed)
        spec = headers.get("x-sim-fault")
        if spec is not None:
            fault = parse_fault(spec)
        elif FAULT_KEYS.intersection(items):
            fault = fault_from_items(items)
        else:
            entry = (
                self._defaults.get((dialect, model))
                or self._defaults.get((dialect, None))
                or self._defaults.get(("*", model))
                or self._defaults.get(("*", None))
            )
            fault = entry[1] if entry else None
        if fault is not None and fault.rate < 1.0 and self._rng.random() >= fault.rate:
            return None
        return fault

    def _window(self, dialect: str) -> tuple[int, float]:
        """Requests remaining in the current minute, and seconds until it resets."""
        now = self._clock()
        minute = int(now // 60)
        start, count = self._windows.get(dialect, (minute, 0))
        count = count + 1 if start == minute else 1
        self._windows[dialect] = (minute, count)
        return max(REQUEST_LIMIT - count, 0), 60.0 - now % 60

    # ------------------------------------------------------------------------------ sending

    async def _send(self, send: Send, reply: Reply, fault: Fault | None) -> None:
        kind = fault.kind if fault is not None and reply.status == 200 else None
        headers = [(b"content-type", reply.content_type), *reply.headers]
        if reply.frames is None:
            await self._send_body(send, reply, headers, kind, fault)
            return
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        frames = [] if kind == "empty" else reply.frames
        delay = fault.chunk_delay_ms / 1000 if fault is not None else 0.0
        for i, frame in enumerate(frames):
            if fault is not None and i == fault.after:
                if kind == "drop":
                    return  # leaving the response incomplete makes the server cut the connection
                if kind == "stall":
                    await self._sleep(fault.seconds)
                if kind == "malformed":
                    frame = _malformed(frame)
            if delay:
                await self._sleep(delay)
            await send({"type": "http.response.body", "body": frame, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _send_body(
        self, send: Send, reply: Reply, headers: list[tuple[bytes, bytes]], kind: str | None, fault: Fault | None
    ) -> None:
        body = b"" if kind == "empty" else reply.body
        if kind == "malformed":
            body = body[: max(len(body) // 2, 1)]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        if kind == "drop":
            await send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})
            return
        if kind == "stall" and fault is not None:
            await self._sleep(fault.seconds)
        await send({"type": "http.response.body", "body": body})

    # ------------------------------------------------------------------------------ control

    def _control(self, method: str, path: str, raw: bytes) -> tuple[int, Any]:
        if path == "/_sim/stats" and method == "GET":
            return 200, self.stats.snapshot()
        if path == "/_sim/reset" and method == "POST":
            self.stats.reset()
            return 200, {"ok": True}
        if path == "/_sim/health":
            return 200, {"ok": True}
        if path == "/_sim/faults":
            try:
                return 200, self._faults_endpoint(method, orjson.loads(raw) if raw else {})
            except (FaultSpecError, orjson.JSONDecodeError, TypeError, ValueError) as exc:
                return 400, {"error": str(exc)}
        return 404, {"error": f"no control endpoint {method} {path}"}

    def _faults_endpoint(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        """``POST {"route": "openai", "model": null, "fault": "503", "seed": 1}`` sets (``fault: null``
        clears) a default fault; ``{"clear": true}`` or ``DELETE`` clears all; ``GET`` lists them."""
        if method == "DELETE" or body.get("clear"):
            self._defaults.clear()
        if "seed" in body:
            self._seed = body["seed"]
            self._rng.seed(self._seed)
            self._header_seed = None
        if method == "POST" and "route" in body:
            key = (str(body["route"]), body.get("model"))
            spec = body.get("fault")
            fault = parse_fault(str(spec)) if spec else None
            if fault is None:
                self._defaults.pop(key, None)
            else:
                self._defaults[key] = (str(spec), fault)
        listed = [{"route": r, "model": m, "fault": s} for (r, m), (s, _) in self._defaults.items()]
        return {"faults": listed, "seed": self._seed}


def _options(items: dict[str, str], headers: dict[str, str]) -> Options:
    values: dict[str, int] = {}
    for key, header in _OPTION_HEADERS.items():
        text = headers.get(header, items.get(key))
        if text is not None:
            try:
                values[key] = int(text)
            except ValueError:
                raise FaultSpecError(f"{header} must be an integer, got {text!r}") from None
    return Options(**values)


def _fault_message(status: int) -> str:
    return {
        429: "Rate limit reached (simulated). Please try again later.",
        500: "The server had an error while processing your request (simulated).",
        502: "Bad gateway (simulated).",
        503: "The service is temporarily unavailable (simulated).",
        529: "Overloaded (simulated).",
    }.get(status, f"Simulated error {status}.")


def _malformed(frame: bytes) -> bytes:
    # Keep the framing (SSE event or NDJSON line) intact and break only the JSON inside it.
    if frame.startswith(b"{"):
        return b'{"broken": ' + frame[1 : len(frame) // 2].replace(b"\n", b"") + b"\n"
    head, _, _ = frame.partition(b"data: ")
    return head + b'data: {"broken": "\n\n'


def _num(value: float) -> bytes:
    return (str(int(value)) if value == int(value) else f"{value:g}").encode()


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _send_plain(send: Send, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


def _query(scope: Scope) -> dict[str, str]:
    qs = scope.get("query_string", b"")
    return dict(parse_qsl(qs.decode("latin-1"))) if qs else {}
