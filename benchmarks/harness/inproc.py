"""Driving the gateway's ASGI app in-process, without an HTTP server (the micro-benchmarks
critical_path.py, critical_phases.py and hit_ab.py): the scope of one chat request and a
``receive`` that hands over its body once, then keeps the client connected."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

CHAT = b"/v1/chat/completions"


def chat_scope(key: str, n: int) -> dict[str, Any]:
    """The ASGI scope of a POST to the chat route with ``key`` as Bearer and an ``n``-byte body."""
    headers = [(b"content-type", b"application/json"), (b"authorization", f"Bearer {key}".encode()),
               (b"content-length", str(n).encode())]
    return {"type": "http", "method": "POST", "path": CHAT.decode(), "raw_path": CHAT,
            "query_string": b"", "http_version": "1.1", "headers": headers, "scheme": "http",
            "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8000)}


def receive_once(body: bytes) -> Callable[[], Awaitable[dict[str, Any]]]:
    """An ASGI ``receive``: the whole body in one message, then nothing (the client stays)."""
    given = False

    async def receive() -> dict[str, Any]:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()
        return {"type": "http.disconnect"}

    return receive
