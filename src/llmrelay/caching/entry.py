"""What a cache entry holds: a complete answer, who produced it and what it cost, as bytes.

Every backend stores the same bytes (``encode``/``decode``), so an entry written by one gateway
instance through Redis is read by another. Only complete answers are stored (:func:`storable`):
never an error, a refusal (``content_filter``) or a stream that ended without a finish reason.

A hit is replayed as a few chunks (:func:`replay`), never one per token: the edges render chunks in
the caller's protocol, and a streamed caller sees the usual shape (text, then the finish chunk).
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from ..types import ChatResult, Chunk, FinishReason, ToolCall, ToolCallDelta, Usage

# Answers whose finish reason is one of these are complete and safe to serve again. ``length`` is
# included: a cut answer is what the same max_tokens would produce again.
STORABLE: frozenset[str] = frozenset({"stop", "tool_calls", "length"})
# Characters per replayed text chunk: a handful of chunks for a typical answer.
REPLAY_PIECE = 1024


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    result: ChatResult
    provider: str | None
    provider_kind: str | None
    upstream_model: str | None
    # What the original call cost upstream: a hit saves exactly this.
    cost_usd: float
    created_at: float


def storable(finish_reason: FinishReason | None) -> bool:
    return finish_reason in STORABLE


def encode(answer: CachedAnswer) -> bytes:
    r, u = answer.result, answer.result.usage
    return orjson.dumps({
        "id": r.id, "model": r.model, "text": r.text, "finish": r.finish_reason,
        "calls": [(c.id, c.name, c.arguments) for c in r.tool_calls],
        "usage": (u.input_tokens, u.output_tokens, u.cache_read_tokens, u.cache_write_tokens,
                  u.cache_write_1h_tokens, u.reasoning_tokens),
        "reasoning": r.reasoning, "sig": r.reasoning_signature,
        "provider": answer.provider, "kind": answer.provider_kind, "upstream": answer.upstream_model,
        "cost": answer.cost_usd, "at": answer.created_at,
    })


def decode(data: bytes) -> CachedAnswer:
    d = orjson.loads(data)
    result = ChatResult(
        id=d["id"], model=d["model"], text=d["text"], finish_reason=d["finish"],
        tool_calls=tuple(ToolCall(id=i, name=n, arguments=a) for i, n, a in d["calls"]),
        usage=Usage(*d["usage"]), reasoning=d["reasoning"], reasoning_signature=d["sig"],
        provider=d["provider"],
    )
    return CachedAnswer(result, d["provider"], d["kind"], d["upstream"], float(d["cost"]), float(d["at"]))


def replay(result: ChatResult, stream: bool) -> list[Chunk]:
    """The chunks a hit is served as: one for a non-streamed caller, a few for a streamed one."""
    if not stream:
        return list(result.to_chunks())
    text = result.text
    pieces = [text[i:i + REPLAY_PIECE] for i in range(0, len(text), REPLAY_PIECE)] or [""]
    chunks = [Chunk(id=result.id, model=result.model, reasoning=result.reasoning,
                    reasoning_signature=result.reasoning_signature, text=pieces[0])]
    chunks.extend(Chunk(text=p) for p in pieces[1:])
    if result.tool_calls:
        chunks.append(Chunk(tool_calls=tuple(
            ToolCallDelta(index=i, id=c.id, name=c.name, arguments=c.arguments)
            for i, c in enumerate(result.tool_calls))))
    chunks.append(Chunk(finish_reason=result.finish_reason, usage=result.usage))
    return chunks
