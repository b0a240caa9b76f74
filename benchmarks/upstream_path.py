"""CPU of the router and provider alone: the request built, sent, the answer decoded, per request.

    python benchmarks/upstream_path.py --mode plain --reps 9 --n 4000

The default config's router (``layers/router.py``) over the bench configuration's OpenAI
provider, with a transport that answers at once with the bench upstream's bytes
(``harness/upstream.py``: the completion, or the 22 SSE events in one piece), so what is timed is
``Router.handle`` to its last chunk: deployment choice, attempt bookkeeping, the request's wire
form, the answer's decode and accounting -- no sockets, no other layer. Prints one JSON line: the
min and median of ``--reps`` runs of ``--n`` requests, in us per request (``time.thread_time``).
For an A/B run it alternately with ``PYTHONPATH=A/src`` and ``PYTHONPATH=B/src``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.append(str(HERE))

from harness.configs import MODEL, settings_for  # noqa: E402
from harness.upstream import BODY, _sse_events  # noqa: E402


class _Answer:
    """The bench upstream's answer, read whole or as lines (what H1Response gives a provider)."""

    __slots__ = ("_lines", "_raw", "headers", "status")

    def __init__(self, raw: bytes, lines: list[bytes]) -> None:
        self.status = 200
        self.headers: dict[str, str] = {}
        self._raw = raw
        self._lines = lines

    async def read(self) -> bytes:
        return self._raw

    async def aiter_lines(self) -> Any:
        for line in self._lines:
            yield line

    async def aclose(self) -> None:
        return None


class _Transport:
    def __init__(self) -> None:
        self.lines = b"".join(_sse_events()).split(b"\n")

    async def send(self, request: Any) -> _Answer:
        if request.body is not None and b'"stream":true' in request.body:
            return _Answer(b"", self.lines)
        return _Answer(BODY, [])

    async def aclose(self) -> None:
        return None


async def run(args: argparse.Namespace) -> dict[str, Any]:
    import orjson

    from llmrelay.context import RequestContext
    from llmrelay.layers.router import Router
    from llmrelay.relay import Relay
    from llmrelay.server.openai_codec import decode_chat
    from llmrelay.types import RawBody

    settings = settings_for("default", 9, Path(tempfile.mkdtemp(prefix="up-")))
    relay = Relay(settings, transports={"up": _Transport()})  # type: ignore[dict-item]
    router = Router(relay.services)
    stream = args.mode == "stream"

    async def one(i: int) -> None:
        data = orjson.dumps({"model": MODEL, "stream": stream, "messages": [
            {"role": "user", "content": f"Tell me something about topic number {i} please"}]})
        parsed = orjson.loads(data)
        request = decode_chat(parsed).attach_raw(RawBody(data, parsed))
        ctx = RequestContext()
        t0 = time.thread_time()
        async for _ in router.handle(request, ctx):
            pass
        times.append(time.thread_time() - t0)

    times: list[float] = []
    for i in range(args.warmup):
        await one(i)
    reps = []
    for _ in range(args.reps):
        times = []
        for i in range(args.n):
            await one(i)
        reps.append(statistics.median(times) * 1e6)
    return {"mode": args.mode, "reps": [round(r, 2) for r in reps], "min": round(min(reps), 2),
            "median": round(statistics.median(reps), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mode", default="plain", choices=("plain", "stream"))
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--n", type=int, default=3000)
    args = parser.parse_args()
    import uvloop

    print(json.dumps(uvloop.run(run(args))), flush=True)


if __name__ == "__main__":
    main()
