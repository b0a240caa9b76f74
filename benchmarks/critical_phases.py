"""The critical path of one request, phase by phase: where the time goes before the last byte
(plain) or the first chunk (streams). In process: the config's gateway app called directly, the
bench upstream (``harness/upstream.py``) as a real process on loopback, distinct prompts.

    python benchmarks/critical_phases.py --config default --mode plain --requests 1000
    python benchmarks/critical_phases.py --config default --mode stream --cpu     # thread CPU, not wall

Functions at the phase boundaries are wrapped to leave a mark (``time.perf_counter_ns``, or with
``--cpu`` ``time.thread_time_ns``, which leaves other processes' load and the kernel's scheduling
out); each row is the median time between two consecutive marks over the requests that followed
the most common sequence. The marks cost ~0.3-1 us each, so absolute figures are a little high;
compare rows, and trees, measured the same way. Add a mark with ``wrap(owner, "name", "label")``.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import inspect
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import critical_path as cp  # noqa: E402
from harness.configs import MODEL, prepare  # noqa: E402
from harness.inproc import chat_scope, receive_once  # noqa: E402

Mark = tuple[str, int]


class Marks:
    def __init__(self, clock: Callable[[], int]) -> None:
        self.clock = clock
        self.items: list[Mark] = []

    def add(self, label: str) -> None:
        self.items.append((label, self.clock()))

    def wrap(self, owner: Any, name: str, label: str, exit_mark: bool = True) -> None:
        fn = getattr(owner, name)
        add = self.add
        if inspect.isasyncgenfunction(fn):
            @functools.wraps(fn)
            def agen(*a: Any, **k: Any) -> Any:
                add(label)
                return fn(*a, **k)
            setattr(owner, name, agen)
        elif inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def coro(*a: Any, **k: Any) -> Any:
                add(label)
                try:
                    return await fn(*a, **k)
                finally:
                    if exit_mark:
                        add(label + " end")
            setattr(owner, name, coro)
        else:
            @functools.wraps(fn)
            def plain(*a: Any, **k: Any) -> Any:
                add(label)
                try:
                    return fn(*a, **k)
                finally:
                    if exit_mark:
                        add(label + " end")
            setattr(owner, name, plain)


def install(m: Marks) -> None:
    """The phase boundaries of the OpenAI edge's chat path (names as of 2026-11-22)."""
    from llmrelay import transport_h1 as th
    from llmrelay.layers import _verdict_memo, ratelimit, router
    from llmrelay.providers import base, openai, openai_stream
    from llmrelay.server import _chat, openai_api, openai_codec

    m.wrap(openai_api, "caller_context", "caller_context")
    m.wrap(openai_api, "authenticate", "authenticate")
    m.wrap(openai_codec, "decode_chat", "decode_chat")
    m.wrap(openai_api, "run_chat", "run_chat", exit_mark=False)
    m.wrap(_verdict_memo.MemoisedEngine, "scan", "safety scan")
    m.wrap(ratelimit, "estimate_tokens", "ratelimit estimate")
    m.wrap(router.Router, "candidates", "router candidates")
    m.wrap(router.Router, "_pick", "router pick")
    m.wrap(router.Router, "_begin", "router begin")
    m.wrap(base.HTTPProvider, "complete", "provider complete")
    m.wrap(base.HTTPProvider, "stream", "provider stream", exit_mark=False)
    m.wrap(openai.OpenAIProvider, "to_wire", "to_wire")
    m.wrap(th.H1Transport, "send", "h1 send")
    m.wrap(th._Conn, "data_received", "data_received", exit_mark=False)
    m.wrap(openai.OpenAIProvider, "from_wire", "from_wire")
    m.wrap(openai_stream.OpenAIStreamDecoder, "feed", "stream decode")
    m.wrap(router.Router, "_succeeded", "router succeeded")
    m.wrap(router.Router, "_account", "router account")
    m.wrap(_chat, "collect", "collect")
    m.wrap(_chat, "ctx_headers", "ctx_headers")
    m.wrap(openai_api.resume, "record", "resume record")


async def _one(app: Any, key: str, i: int, stream: bool, m: Marks) -> list[Mark]:
    body = json.dumps({"model": MODEL, "stream": stream, "messages": [
        {"role": "user", "content": f"Tell me something about topic number {i} please"}]}).encode()
    scope = chat_scope(key, len(body))
    first = True
    receive = receive_once(body)

    async def send(message: dict[str, Any]) -> None:
        nonlocal first
        if message["type"] == "http.response.start":
            m.add("response start")
        elif first:
            first = False
            m.add("first body")
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            m.add("last body")

    m.items = []
    m.add("app")
    await app(scope, receive, send)
    m.add("app return")
    return m.items


async def run(args: argparse.Namespace) -> None:
    from llmrelay.relay import Relay
    from llmrelay.server.app import create_app

    marks = Marks(time.thread_time_ns if args.cpu else time.perf_counter_ns)
    install(marks)
    port = cp._free_port()
    up = cp._upstream(port)
    seqs: dict[tuple[str, ...], list[list[int]]] = {}
    try:
        cfg = prepare(args.config, port, Path(tempfile.mkdtemp(prefix="phases-")))
        relay = Relay.from_file(cfg.path)
        await relay.start()
        app = create_app(relay)
        for i in range(args.warmup + args.requests):
            got = await _one(app, cfg.api_key, i, args.mode == "stream", marks)
            if i % 50 == 0:
                await asyncio.sleep(0.01)  # the ledger writer's batch runs between requests
            if i >= args.warmup:
                seqs.setdefault(tuple(label for label, _ in got), []).append([t for _, t in got])
        await relay.aclose()
    finally:
        up.terminate()
        up.wait()
    labels, rows = max(seqs.items(), key=lambda kv: len(kv[1]))
    unit = "thread CPU" if args.cpu else "wall"
    print(f"{args.config} {args.mode}, {unit}: {len(rows)} of {args.requests} requests in the main sequence")
    print("| from | to | us |\n|---|---|---|")
    for j in range(1, len(labels)):
        print(f"| {labels[j - 1]} | {labels[j]} | {statistics.median((r[j] - r[j - 1]) / 1000 for r in rows):.1f} |")
    for end in ("first body", "last body", "app return"):
        if end in labels:
            k = labels.index(end)
            print(f"| app | {end} (total) | {statistics.median((r[k] - r[0]) / 1000 for r in rows):.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="default", choices=("passthrough", "default", "all"))
    parser.add_argument("--mode", default="plain", choices=("plain", "stream"))
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--cpu", action="store_true", help="thread CPU time instead of wall time")
    args = parser.parse_args()
    import uvloop

    uvloop.run(run(args))


if __name__ == "__main__":
    main()
