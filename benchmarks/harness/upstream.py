"""A fake OpenAI-compatible upstream that costs as little as possible per request.

Answers ``POST .../chat/completions`` with precomputed bytes over keep-alive HTTP/1.1: a JSON
completion, or (when the body asks for ``"stream": true``) twenty SSE chunks plus a usage chunk and
``[DONE]``, sent as HTTP chunks in one write. A body containing ``bench-slow`` is answered after
``--slow-ms`` (so identical in-flight requests can be joined by the gateway's dedup). Run alone:

    python benchmarks/harness/upstream.py --port 9100
"""

from __future__ import annotations

import argparse
import asyncio
import socket

import orjson

MODEL = "gpt-4o-mini"
STREAM_CHUNKS = 20


def _completion() -> bytes:
    return orjson.dumps({
        "id": "chatcmpl-bench", "object": "chat.completion", "created": 1700000000, "model": MODEL,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello from the bench upstream."},
                     "logprobs": None, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19},
    })


def _sse_events() -> list[bytes]:
    base = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1700000000, "model": MODEL}
    events = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}]
    events += [{**base, "choices": [{"index": 0, "delta": {"content": f"word{i} "}, "finish_reason": None}]}
               for i in range(STREAM_CHUNKS)]
    events.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    events.append({**base, "choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": STREAM_CHUNKS,
                                                     "total_tokens": 12 + STREAM_CHUNKS}})
    return [b"data: " + orjson.dumps(e) + b"\n\n" for e in events] + [b"data: [DONE]\n\n"]


def _http_chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


BODY = _completion()
PLAIN = (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: keep-alive\r\n"
         b"content-length: " + str(len(BODY)).encode() + b"\r\n\r\n" + BODY)
STREAM = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: keep-alive\r\n"
          b"transfer-encoding: chunked\r\n\r\n" + b"".join(_http_chunk(e) for e in _sse_events()) + b"0\r\n\r\n")
NOT_FOUND = b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"
MODELS_BODY = orjson.dumps({"object": "list", "data": [{"id": MODEL, "object": "model", "created": 0, "owned_by": "bench"}]})
MODELS = (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
          + str(len(MODELS_BODY)).encode() + b"\r\n\r\n" + MODELS_BODY)


class Upstream(asyncio.Protocol):
    """One connection: parse request heads and bodies from the buffer, answer each in turn."""

    def __init__(self, slow_s: float) -> None:
        self.slow_s = slow_s
        self.buf = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport, so no isinstance check here.
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end]
            length = _content_length(head)
            if len(self.buf) < end + 4 + length:
                return
            body = self.buf[end + 4:end + 4 + length]
            self.buf = self.buf[end + 4 + length:]
            self._answer(head, body)

    def _answer(self, head: bytes, body: bytes) -> None:
        assert self.transport is not None
        line = head.split(b"\r\n", 1)[0]
        if b"/models" in line and line.startswith(b"GET"):
            out = MODELS
        elif b"/chat/completions" not in line:
            out = NOT_FOUND
        else:
            out = STREAM if (b'"stream":true' in body or b'"stream": true' in body) else PLAIN
        if self.slow_s and b"bench-slow" in body:
            asyncio.get_running_loop().call_later(self.slow_s, self._write, out)
        else:
            self.transport.write(out)

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)


def _content_length(head: bytes) -> int:
    i = head.lower().find(b"content-length:")
    if i < 0:
        return 0
    j = head.find(b"\r\n", i)
    return int(head[i + 15:j if j >= 0 else None])


async def serve(port: int, slow_ms: float = 50.0) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Upstream(slow_ms / 1000), "127.0.0.1", port, backlog=2048)
    print(f"upstream listening on 127.0.0.1:{port}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--slow-ms", type=float, default=50.0)
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # plain asyncio is fine, only slower
        pass
    asyncio.run(serve(args.port, args.slow_ms))


if __name__ == "__main__":
    main()
