"""Per-request context: who is calling, and what happened to the call on its way through.

The edge (HTTP server, library call, CLI) fills the caller fields; the layers fill the rest. The
context is the one mutable object on the request path and belongs to a single request.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from random import getrandbits
from typing import Any, Literal

from .errors import LLMRelayError
from .types import Usage

Priority = Literal["high", "normal", "low"]
CacheMode = Literal["default", "no-store", "refresh"]
CacheStatus = Literal["hit", "miss", "off"]
# Work that does not shape the response: a plain function, or one returning an awaitable.
Deferred = Callable[[], "Awaitable[None] | None"]

_log = logging.getLogger("llmrelay.context")

PRIORITY_RANK: dict[str, int] = {"high": 0, "normal": 1, "low": 2}


def new_request_id() -> str:
    # 96 random bits as hex: unique enough, and cheaper than uuid4() or os.urandom (a system call)
    # on the hot path. The id is not a secret; random reseeds itself in forked workers.
    return f"req_{getrandbits(96):024x}"


@dataclass(slots=True)
class RequestContext:
    request_id: str = field(default_factory=new_request_id)
    # The edge the call came in through: "openai", "anthropic" or "library".
    protocol: str = "library"

    # ---- the caller (set by the edge and the identity layer) -----------------------------------
    key_id: str | None = None
    key_name: str | None = None
    # The VirtualKey record, when the call used one (policy, limits and budgets read it).
    key: Any = None
    user: str | None = None
    team: str | None = None
    session: str | None = None
    priority: Priority = "normal"
    cache_mode: CacheMode = "default"
    is_admin: bool = False
    # Per-request routing override (x-llmrelay-strategy): a strategy name, and/or a deployment pin
    # ("provider/model" or a provider name) within the model group.
    strategy: str | None = None
    deployment: str | None = None
    # The API key the caller presented (set by the edge; the identity layer checks it). None for
    # in-process library calls, which are trusted.
    credential: str | None = None

    # ---- timing ----------------------------------------------------------------------------------
    started_at: float = field(default_factory=time.time)
    started_mono: float = field(default_factory=time.perf_counter)
    first_chunk_mono: float | None = None
    ended_mono: float | None = None

    # ---- what happened (set by the layers) -------------------------------------------------------
    # The effective policy for this caller (the policy layer's object).
    policy: Any = None
    model_group: str | None = None
    provider: str | None = None
    provider_kind: str | None = None
    upstream_model: str | None = None
    attempts: int = 0
    cache_status: CacheStatus = "off"
    joined: bool = False
    recovered: bool = False
    # Output tokens streamed so far (the upstream's count once it arrives, else estimated).
    tokens_so_far: int = 0
    usage: Usage | None = None
    cost_usd: float = 0.0
    cost_saved_usd: float = 0.0
    unpriced: bool = False
    status: str = "pending"
    error: LLMRelayError | None = None
    safety_action: str | None = None
    safety_findings: list[Any] = field(default_factory=list)
    # Free-form notes a layer leaves for later ones (kept small; not logged).
    notes: dict[str, Any] = field(default_factory=dict)
    # Work to run once the response has been sent (see ``defer``). None: run it at once (library
    # calls); an HTTP edge sets a list and runs it after the last byte (``run_after_response``).
    after_response: list[Deferred] | None = None

    @property
    def latency_s(self) -> float | None:
        return None if self.ended_mono is None else self.ended_mono - self.started_mono

    @property
    def ttft_s(self) -> float | None:
        return None if self.first_chunk_mono is None else self.first_chunk_mono - self.started_mono

    def defer(self, work: Deferred) -> bool:
        """Queue ``work`` (bookkeeping that does not change the answer: a ledger row, metrics, a
        settle) to run after the response is sent; False when nothing defers it (the caller runs
        it now). Read ``ctx`` inside ``work``: it runs once the request has ended.

            if not ctx.defer(lambda: record(request, ctx)):
                record(request, ctx)
        """
        queue = self.after_response
        if queue is None:
            return False
        queue.append(work)
        return True

    async def run_after_response(self) -> None:
        """Run the deferred work (the edge calls this in a ``finally`` once the response is out).
        Each item runs even when one before it failed; awaitables are shielded, so a cancelled
        request still settles. Work deferred from now on runs at once."""
        work, self.after_response = self.after_response, None
        if not work:
            return
        pending: list[Awaitable[None]] = []
        for fn in work:
            try:
                result = fn()
            except Exception:
                _log.exception("deferred work of request %s failed", self.request_id)
                continue
            if result is not None and inspect.isawaitable(result):
                pending.append(result)
        if pending:
            await asyncio.shield(_drain(pending, self.request_id))


async def _drain(pending: list[Awaitable[None]], request_id: str) -> None:
    for aw in pending:
        try:
            await aw
        except Exception:
            _log.exception("deferred work of request %s failed", request_id)
