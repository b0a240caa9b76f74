"""A slow client over a real gateway: memory stays flat while it lags behind a long answer.

The gateway (uvicorn on 127.0.0.1) streams a ~100,000-chunk answer from the simulator (over HTTP)
to a client that reads a little at a time through a small socket buffer. If anything on the way
read ahead (the edge, a layer, the provider's HTTP client), the unread rest of the answer (tens of
megabytes) would pile up in the process; with backpressure it stays upstream. Measured in the test
process, which hosts the gateway and the simulator: Python allocations (tracemalloc) and RSS,
from a baseline taken once the stream is warm. Client resume is off here: when on, it keeps what
was sent (capped at ``server.resume.MAX_STREAM_BYTES`` per stream), which is a record, not read-ahead.
"""

from __future__ import annotations

import socket
import time
import tracemalloc
from collections.abc import Iterator

import orjson
import pytest

from llmrelay import Relay

from .conftest import serve

CHUNKS = 100_000
READ_FOR_S = 4.0


def _rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * 4096


@pytest.fixture(scope="module")
def sim_url() -> Iterator[str]:
    from llmrelay.simulator import Simulator, serve_in_thread

    with serve_in_thread(app=Simulator(seed=0)) as url:
        yield url


def test_a_lagging_reader_keeps_gateway_memory_flat(sim_url: str) -> None:
    relay = Relay({
        "providers": {"sim": {"kind": "openai", "base_url": f"{sim_url}/openai/v1", "api_key": "x"}},
        "models": {"long": [{"provider": "sim", "model": f"gpt-4o-mini+words={CHUNKS * 2},chunks={CHUNKS}"}]},
        "storage": {"url": "sqlite://:memory:"},
        "server": {"stream_resume_ttl_s": 0},
    })
    with serve(relay) as url:
        port = int(url.rsplit(":", 1)[1])
        body = orjson.dumps({"model": "long", "stream": True, "messages": [{"role": "user", "content": "go"}]})
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(("127.0.0.1", port))
            sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                         + f"content-length: {len(body)}\r\n\r\n".encode() + body)
            head, received, samples = _lag(sock)
    traced = [t for t, _ in samples]
    rss = [r for _, r in samples]
    answer = CHUNKS * 150  # bytes of SSE the whole answer takes at least
    print(f"\nread {received // 1024} KiB of >= {answer // 2**20} MiB in {READ_FOR_S:g} s; traced "
          f"{[t // 1024 for t in traced]} KiB; RSS {[r // 2**20 for r in rss]} MiB")
    assert b"200 OK" in head and received < answer // 4  # the reader really lagged
    # Far below the unread answer once warm (the first samples include one-off caches). What does
    # grow is bounded or inherent: the upstream read buffer (64 KiB before reading pauses, and its
    # lines while they are handed on) and the answer text kept for accounting and stream recovery
    # (~70 bytes per chunk passed on). Buffering the unread answer would add megabytes a second.
    assert traced[-1] - traced[2] < 3 * 2**20, traced
    assert rss[-1] - rss[2] < 8 * 2**20, rss



def _lag(sock: socket.socket) -> tuple[bytes, int, list[tuple[int, int]]]:
    """Read 1 KiB every 10 ms for READ_FOR_S seconds once the answer started: the first bytes,
    bytes read, and (traced, RSS) samples every half second."""
    sock.settimeout(15)
    head = sock.recv(1024)  # the simulator composes the whole answer first: not part of the lag
    tracemalloc.start()
    try:
        received, samples = len(head), []
        start = time.monotonic()
        next_sample = start + 0.5  # after warm-up
        # At least four samples however slowly this loop runs on a busy machine (the check reads [2]).
        while (now := time.monotonic()) - start < READ_FOR_S or len(samples) < 4:
            data = sock.recv(1024)
            assert data, "the gateway closed the stream early"
            received += len(data)
            if now >= next_sample:
                samples.append((tracemalloc.get_traced_memory()[0], _rss()))
                next_sample = now + 0.5
            time.sleep(0.01)
        return head, received, samples
    finally:
        tracemalloc.stop()
