"""Client resume of streamed answers: ``GET /v1/streams/{request_id}`` replays what a client missed.

With ``server.stream_resume_ttl_s > 0`` every event of a streamed OpenAI-edge answer carries an SSE
``id:`` (1, 2, 3...) and is kept, in process, for that many seconds after the stream ends. A client
whose connection dropped reconnects with the stream's ``x-llmrelay-request-id`` and the last id it
received, as ``?last_event_id=N`` or a ``Last-Event-ID`` header (what browsers' EventSource send),
and gets every later event; if the answer is still being produced (the gateway has not yet seen
the drop, e.g. behind a proxy), it follows it to the end. A client that goes away still cancels
the upstream call: the gateway never pays for an answer nobody reads, so after a drop the replay
holds what was produced until then, including the events that were lost in transit.

Memory is bounded: at most ``MAX_STREAMS`` recordings, each at most ``MAX_STREAM_BYTES`` (a longer
answer keeps streaming but stops being recorded, its recording is freed, and a resume of it answers
410), and ``MAX_TOTAL_BYTES`` for all of them together (the oldest recordings are evicted first,
live or not); only the key that made the request may resume it.

    curl -N localhost:4000/v1/streams/req_4f2a...?last_event_id=12 -H "authorization: Bearer $KEY"
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

from ..context import RequestContext
from ..errors import InvalidRequestError, NotFoundError
from ._asgi import SSE_HEADERS, Request, StreamResponse
from .auth import authenticate, caller_context

if TYPE_CHECKING:
    from .app import Gateway

MAX_STREAMS = 1000
MAX_STREAM_BYTES = 2 * 1024 * 1024
# Without a total, 1,000 long streams could hold 2 GiB; 64 MiB keeps ~30 answers of the maximum
# size, or thousands of ordinary ones, for the ttl.
MAX_TOTAL_BYTES = 64 * 1024 * 1024
STATE_KEY = "server.resume"


class StreamGone(NotFoundError):
    status = 410
    code = "stream_gone"


class Recording:
    """The numbered events of one stream; ``follow`` waits for more until the stream ends."""

    __slots__ = ("changed", "done", "events", "owner", "size", "truncated")

    def __init__(self, owner: str | None) -> None:
        self.owner = owner
        self.events: list[bytes] = []
        self.size = 0
        self.done = False
        self.truncated = False
        # Made by a follower that has to wait: most recordings are never followed, and every
        # event of every stream would otherwise set one and make the next.
        self.changed: asyncio.Event | None = None

    def add(self, data: bytes) -> bytes:
        """``data`` (one or more SSE events) with an ``id:`` line on each, recorded."""
        out = []
        for event in data.split(b"\n\n"):
            if not event:
                continue
            line = b"id: %d\n%s\n\n" % (len(self.events) + 1, event)
            self.events.append(line)
            out.append(line)
            self.size += len(line)
        if self.size > MAX_STREAM_BYTES:
            self.drop()
        self._wake()
        return b"".join(out)

    def drop(self) -> None:
        """Stop recording and free the events (a resume answers 410; a follower sees the end)."""
        self.truncated = True
        self.events = []
        self.size = 0
        self.done = True
        self._wake()  # a follower waiting on a recording evicted from the store sees the end now

    def finish(self) -> None:
        self.done = True
        self._wake()

    def _wake(self) -> None:
        changed, self.changed = self.changed, None
        if changed is not None:
            changed.set()

    async def follow(self, after: int) -> AsyncIterator[bytes]:
        pos = max(0, after)
        while True:
            while pos < len(self.events):
                pos += 1
                yield self.events[pos - 1]
            if self.done:
                return
            if self.changed is None:
                self.changed = asyncio.Event()
            await self.changed.wait()


class ResumeStore:
    """Recordings by request id, expiring ``ttl_s`` after their stream ends."""

    def __init__(self, ttl_s: float, now: Callable[[], float] = time.monotonic,
                 max_bytes: int = MAX_TOTAL_BYTES) -> None:
        self.ttl_s = ttl_s
        self.now = now
        self.max_bytes = max_bytes
        self.bytes = 0  # the size of every recording held
        # request id -> (recording, expiry time or None while live); insertion order = age.
        self._items: OrderedDict[str, tuple[Recording, float | None]] = OrderedDict()
        # (expiry, request id) in closing order, which is expiry order (one ttl, a monotonic
        # clock): a purge pops the expired from the left instead of scanning every recording,
        # which under steady streaming was 5% of the gateway's CPU (O(recordings) per stream).
        self._expiries: deque[tuple[float, str]] = deque()

    def open(self, request_id: str, owner: str | None) -> Recording:
        self._purge()
        old = self._items.pop(request_id, None)
        if old is not None:
            self._forget(old[0])
        while len(self._items) >= MAX_STREAMS:
            self._forget(self._items.popitem(last=False)[1][0])
        rec = Recording(owner)
        self._items[request_id] = (rec, None)
        return rec

    def add(self, rec: Recording, data: bytes) -> bytes:
        """``rec.add(data)``, within the store's total: the oldest recordings go when it is full."""
        before = rec.size
        out = rec.add(data)
        self.bytes += rec.size - before
        while self.bytes > self.max_bytes and self._items:
            self._forget(self._items.popitem(last=False)[1][0])
        return out

    def _forget(self, rec: Recording) -> None:
        self.bytes -= rec.size
        rec.drop()

    def close(self, request_id: str) -> None:
        item = self._items.get(request_id)
        if item is not None:
            item[0].finish()
            expiry = self.now() + self.ttl_s
            self._items[request_id] = (item[0], expiry)
            self._expiries.append((expiry, request_id))
            if len(self._expiries) > 2 * MAX_STREAMS:
                self._compact()

    def _compact(self) -> None:
        """Drop the expiry entries of recordings no longer held (evicted by the caps or closed
        again). Without this the queue kept an entry per stream for the whole ttl whatever the caps
        (~160 bytes each: ~50 MB at 1,100 streams/s and a 300 s ttl, the soak's RSS growth); with it,
        at most 2 * MAX_STREAMS entries, rebuilt in order once per MAX_STREAMS closes at most."""
        items = self._items
        self._expiries = deque(e for e in self._expiries if (held := items.get(e[1])) is not None and held[1] == e[0])

    def get(self, request_id: str) -> Recording | None:
        self._purge()
        item = self._items.get(request_id)
        return None if item is None else item[0]

    def _purge(self) -> None:
        now = self.now()
        expiries, items = self._expiries, self._items
        while expiries and expiries[0][0] <= now:
            expiry, rid = expiries.popleft()
            item = items.get(rid)
            if item is not None and item[1] == expiry:  # not evicted or closed again since
                del items[rid]
                self.bytes -= item[0].size

    def __len__(self) -> int:
        return len(self._items)


def store_of(gw: Gateway) -> ResumeStore | None:
    ttl = gw.relay.settings.server.stream_resume_ttl_s
    if ttl <= 0:
        return None
    state = gw.relay.services.state
    store: ResumeStore | None = state.get(STATE_KEY)
    if store is None or store.ttl_s != ttl:
        # On the relay's clock, so expiry can be tested without waiting.
        store = state[STATE_KEY] = ResumeStore(ttl, gw.relay.services.clock.monotonic)
    return store


def record(gw: Gateway, ctx: RequestContext, response: StreamResponse) -> StreamResponse:
    """Number and keep the events of ``response`` when resume is on (the OpenAI edge calls this)."""
    store = store_of(gw)
    if store is None:
        return response
    rec = store.open(ctx.request_id, ctx.key_id or ctx.credential)
    response.body = _recorded(store, ctx.request_id, rec, response.body)
    return response


async def _recorded(store: ResumeStore, request_id: str, rec: Recording,
                    body: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    try:
        async for data in body:
            yield store.add(rec, data) if not rec.truncated else data
    finally:
        store.close(request_id)
        aclose = getattr(body, "aclose", None)
        if aclose is not None:
            await aclose()


def register(gw: Gateway) -> None:
    from .openai_api import WIRE

    gw.route("GET", "/v1/streams/{request_id}", WIRE, lambda req: resume(gw, req))


async def resume(gw: Gateway, req: Request) -> StreamResponse:
    ctx = req.ctx = caller_context(req.headers, "openai")
    await authenticate(gw.auth, ctx)
    store = store_of(gw)
    rid = req.params["request_id"]
    rec = store.get(rid) if store is not None else None
    if rec is None or rec.owner != (ctx.key_id or ctx.credential):
        raise NotFoundError(
            f"no resumable stream {rid!r}: it ended more than server.stream_resume_ttl_s ago, was made with "
            "another key, or resume is off; send the request again"
        )
    if rec.truncated:
        raise StreamGone(f"stream {rid!r} was longer than the resume buffer ({MAX_STREAM_BYTES} bytes); send the request again")
    after = _last_event_id(req)
    headers = [*SSE_HEADERS, (b"x-llmrelay-request-id", rid.encode())]
    return StreamResponse(rec.follow(after), headers=headers)


def _last_event_id(req: Request) -> int:
    raw = req.headers.get("last-event-id") or ""
    for part in req.scope.get("query_string", b"").decode("latin-1").split("&"):
        name, _, value = part.partition("=")
        if name == "last_event_id":
            raw = value
    if not raw:
        return 0
    if not raw.strip().isdigit():
        raise InvalidRequestError(f"last_event_id must be a number (an SSE id: this stream sent), got {raw!r}")
    return int(raw)
