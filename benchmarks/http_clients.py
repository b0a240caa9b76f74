"""Which async HTTP client should carry upstream calls? aiohttp vs httpx against a local upstream.

A tiny raw-asyncio HTTP/1.1 server on 127.0.0.1 answers every POST with a fixed chat completion
(keep-alive, Content-Length), so the figures measure the client, not the server. Each client sends
the same JSON body through one pooled session at concurrency 1, 16 and 64.

    python benchmarks/http_clients.py [--requests 2000]

Prints a markdown table of requests/s and p50/p99 latency per client and concurrency.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable

import orjson

ANSWER = orjson.dumps({
    "id": "chatcmpl-bench", "object": "chat.completion", "created": 0, "model": "gpt-4o-mini",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello from the bench upstream."},
                 "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19},
})
RESPONSE = (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: keep-alive\r\n"
            b"content-length: " + str(len(ANSWER)).encode() + b"\r\n\r\n" + ANSWER)
BODY = orjson.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi there"}], "stream": False})
HEADERS = {"content-type": "application/json", "authorization": "Bearer sk-bench"}


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            if length:
                await reader.readexactly(length)
            writer.write(RESPONSE)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):  # client gone or shutdown
        pass
    finally:
        writer.close()


Send = Callable[[], Awaitable[None]]


async def _run(send: Send, total: int, concurrency: int) -> tuple[float, list[float]]:
    latencies: list[float] = []
    remaining = total

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            t0 = time.perf_counter()
            await send()
            latencies.append(time.perf_counter() - t0)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies


async def _aiohttp_client(url: str) -> tuple[Send, Callable[[], Awaitable[None]]]:
    import aiohttp

    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256))

    async def send() -> None:
        async with session.post(url, data=BODY, headers=HEADERS) as resp:
            orjson.loads(await resp.read())

    return send, session.close


async def _httpx_client(url: str) -> tuple[Send, Callable[[], Awaitable[None]]]:
    import httpx

    client = httpx.AsyncClient(limits=httpx.Limits(max_connections=256, max_keepalive_connections=256))

    async def send() -> None:
        resp = await client.post(url, content=BODY, headers=HEADERS)
        orjson.loads(resp.content)

    return send, client.aclose


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def main(total: int) -> None:
    server = await asyncio.start_server(_serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    rows = []
    for name, factory in (("aiohttp", _aiohttp_client), ("httpx", _httpx_client)):
        for concurrency in (1, 16, 64):
            send, close = await factory(url)
            await _run(send, min(200, total), concurrency)  # warm the pool
            elapsed, lat = await _run(send, total, concurrency)
            await close()
            rows.append((name, concurrency, total / elapsed, statistics.median(lat) * 1000, _pct(lat, 0.99)))
    server.close()
    await server.wait_closed()
    print("| client | concurrency | requests/s | p50 ms | p99 ms |")
    print("|---|---:|---:|---:|---:|")
    for name, conc, rps, p50, p99 in rows:
        print(f"| {name} | {conc} | {rps:,.0f} | {p50:.2f} | {p99:.2f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    asyncio.run(main(parser.parse_args().requests))
