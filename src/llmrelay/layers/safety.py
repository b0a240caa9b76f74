"""The safety layer (see llmrelay.pipeline.LAYERS for its place on the request path).

Before the call, the text of every user and tool message is inspected under ``ctx.policy`` (set by
the policy layer; the global policy otherwise): a block raises ContentPolicyError (400
``content_policy_violation``), a redaction sends a rewritten request on, a flag is recorded. The
answer stream is wrapped with the incremental filter: text and tool-call arguments (one filter per
call) are released as they are checked, a block
ends the stream with ``finish_reason="content_filter"``. Decisions go to ``ctx.safety_action`` /
``ctx.safety_findings``, the ``llmrelay_safety_decisions_total`` metric and the audit log.

What the deterministic detectors find in a text is remembered per (policy, direction, text) in a
bounded memo (:mod:`._verdict_memo`): a repeated prompt, and a cached answer replayed in the same
pieces, are scanned once. Each request still gets its own decision and records it. The learned
scorer and the configured classifiers keep their own memo per text (:mod:`llmrelay.safety.model_memo`);
external moderation runs per request, and with moderation on the memo is bypassed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from typing import Any

from ..context import RequestContext
from ..errors import ContentPolicyError
from ..pipeline import Handler
from ..safety.engine import Decision, Redactor, SafetyEngine, merge_learned
from ..safety.findings import ACTION_RANK, Finding
from ..safety.moderation import Moderator, moderator_from_settings
from ..safety.policy import Policy, global_policy
from ..safety.service import engine_of
from ..safety.stream_filter import StreamFilter
from ..services import Services
from ..types import ChatRequest, Chunk, Message, TextPart, ToolCallDelta
from ._verdict_memo import MemoisedEngine, VerdictMemo

_INSPECTED_ROLES = ("user", "tool")


class _Recorder:
    def __init__(self, services: Services) -> None:
        self.metrics = services.metrics
        self.audit = services.audit

    def note(self, ctx: RequestContext, direction: str, action: str, findings: Sequence[Finding], acts: Sequence[str]) -> None:
        if not findings:
            return
        if ctx.safety_action is None or ACTION_RANK[action] > ACTION_RANK[ctx.safety_action]:
            ctx.safety_action = action
        for f, a in zip(findings, acts, strict=True):
            ctx.safety_findings.append({**f.to_dict(), "direction": direction, "action": a})
            if self.metrics is not None:
                self.metrics.safety.labels(f.category, direction, a).inc()
        if self.audit is not None:
            self.audit.record("safety", {
                "request_id": ctx.request_id, "direction": direction, "action": action,
                "policy": getattr(ctx.policy, "source", None), "level": getattr(ctx.policy, "level", None),
                "findings": [{"category": f.category, "type": f.type, "score": round(f.score, 3), "action": a}
                             for f, a in zip(findings, acts, strict=True)],
            }, user=ctx.user)


async def _inspect_message(
    engine: SafetyEngine, msg: Message, policy: Policy, redactor: Redactor, moderator: Moderator | None,
) -> tuple[Message, list[Decision]]:
    if isinstance(msg.content, str) or msg.content is None:
        texts: Sequence[str] = (msg.content or "",)
    else:
        texts = [p.text for p in msg.content if isinstance(p, TextPart)]
    decisions: list[Decision] = []
    for text in texts:
        if not text:
            continue
        findings = engine.scan(text, policy, "input", learned=False)
        if engine.wants_learned(findings, policy):
            # A model run costs milliseconds: off the event loop, so other requests keep flowing.
            findings = merge_learned(findings, await asyncio.to_thread(engine.learned_scan, text, policy), policy)
        if engine.classifiers:
            findings += await asyncio.to_thread(engine.classifier_scan, text, policy)
        if moderator is not None and policy.moderation and moderator.applies("input"):
            extra, _ = await moderator.check(text)
            findings += extra
        if findings:  # nothing found (the common case): no decision to make, the text goes on as it is
            decisions.append(engine.decide(text, findings, policy, redactor, engine._custom_for(policy, "input")))
    if not any(d.action == "redact" for d in decisions):
        return msg, decisions
    if isinstance(msg.content, str):
        return replace(msg, content=decisions[0].text), decisions
    it = iter(d.text for d in decisions)
    parts = tuple(replace(p, text=next(it)) if isinstance(p, TextPart) and p.text else p for p in msg.content or ())
    return replace(msg, content=parts), decisions


def build(services: Services, next: Handler) -> Handler | None:
    cfg = services.settings.safety
    engine = engine_of(services)
    default = global_policy(cfg)
    if default.level == "off" and not cfg.teams and not cfg.keys and services.keys is None:
        return None  # nobody can switch safety on: the layer costs nothing
    moderator = moderator_from_settings(services)
    recorder = _Recorder(services)
    # One memo per settings generation: a reload starts empty (and new policies never match old ones).
    memo = VerdictMemo()
    memoised = MemoisedEngine(engine, memo)
    services.state["safety_verdict_memo"] = memo

    def engine_for(policy: Policy, direction: str) -> SafetyEngine:
        """The memoised engine, unless an external moderator takes part in this policy's verdicts."""
        if moderator is not None and policy.moderation and moderator.applies(direction):
            return engine
        return memoised

    async def inspect_prompt(request: ChatRequest, ctx: RequestContext, policy: Policy, redactor: Redactor) -> ChatRequest:
        messages = list(request.messages)
        findings: list[Finding] = []
        acts: list[str] = []
        changed = False
        scanner = engine_for(policy, "input")
        for i, msg in enumerate(messages):
            if msg.role not in _INSPECTED_ROLES:
                continue
            new, decisions = await _inspect_message(scanner, msg, policy, redactor, moderator)
            for d in decisions:
                findings += d.findings
                acts += d.actions
            if new is not msg:
                messages[i], changed = new, True
        action = max(acts, key=ACTION_RANK.__getitem__) if acts else "allow"
        recorder.note(ctx, "input", action, findings, acts)
        if action == "block":
            cats = sorted({f.category for f, a in zip(findings, acts, strict=True) if a == "block"})
            raise ContentPolicyError(f"the prompt was blocked by the safety policy ({', '.join(cats)}); remove that content and retry")
        return replace(request, messages=tuple(messages)) if changed else request

    def layer(request: ChatRequest, ctx: RequestContext) -> AsyncIterator[Chunk]:
        policy: Policy = ctx.policy if isinstance(ctx.policy, Policy) else default
        if not policy.enabled:
            return next(request, ctx)  # safety off for this caller: no generator level per chunk
        return guarded(request, ctx, policy)

    async def guarded(request: ChatRequest, ctx: RequestContext, policy: Policy) -> AsyncIterator[Chunk]:
        redactor = Redactor()
        request = await inspect_prompt(request, ctx, policy, redactor)
        # One filter per answer (``n > 1`` answers interleave; held text goes out with its own).
        out_engine = engine_for(policy, "output")
        # Made when an answer's first text arrives: a complete answer with nothing found gets none.
        filters: dict[int, _AnswerFilter] = {}
        upstream = next(request, ctx)
        try:
            async for chunk in upstream:
                filt = filters.get(chunk.choice)
                found: list[Finding] | None = None
                if filt is None:
                    if not (chunk.text or chunk.tool_calls):
                        yield chunk  # a role, usage or finish-only chunk: nothing to check or hold
                        continue
                    if chunk.finish_reason is not None:
                        # A whole answer in one chunk (not streamed, or a one-chunk stream).
                        found = _clean_or_found(out_engine, policy, redactor, chunk)
                        if found is None:
                            yield chunk
                            continue
                    filt = filters[chunk.choice] = _AnswerFilter(out_engine, policy, redactor)
                out = filt(chunk, found)
                if filt.blocked:
                    _note_output(recorder, ctx, filt)
                    yield Chunk(finish_reason="content_filter", usage=chunk.usage)
                    return
                if out is not None:
                    yield out
        finally:
            aclose: Any = getattr(upstream, "aclose", None)
            if aclose is not None:
                await aclose()
        for filt in filters.values():
            _note_output(recorder, ctx, filt)

    return layer


class _AnswerFilter:
    """The incremental filter for one answer: one :class:`StreamFilter` for the text and one per
    tool-call index for the arguments (a secret or an email can travel in a tool call as well as in
    prose), sharing the redactor so a value gets the same placeholder everywhere.

    Providers stream an answer's parts one after another (text, then each call in turn). When the
    answer moves on to its next part, the previous part is complete: it is scanned and released in
    full first, so the parts keep their order (edges such as Anthropic's turn each part into a block).
    """

    def __init__(self, engine: SafetyEngine, policy: Policy, redactor: Redactor) -> None:
        self._make = lambda: StreamFilter(engine, policy, redactor=redactor)
        self.text = self._make()
        self.tools: dict[int, StreamFilter] = {}
        self.policy = policy
        self._part: int | None = None  # None: text; else the tool-call index being streamed

    @property
    def filters(self) -> list[StreamFilter]:
        return [self.text, *self.tools.values()]

    @property
    def blocked(self) -> bool:
        return any(f.blocked for f in self.filters)

    @property
    def findings(self) -> list[Finding]:
        return [f for filt in self.filters for f in filt.findings]

    def _tool(self, index: int) -> StreamFilter:
        """The filter of tool call ``index``'s arguments (made on its first delta)."""
        filt = self.tools.get(index)
        if filt is None:
            filt = self.tools[index] = self._make()
        return filt

    def _switch(self, part: int | None, out: list[ToolCallDelta]) -> str:
        """Move on to ``part``: release the rest of the previous one (text returned, calls appended)."""
        text = ""
        if part != self._part:
            if self._part is None:
                text = self.text.close()
            else:
                rest = self.tools[self._part].close()
                if rest:
                    out.append(ToolCallDelta(index=self._part, arguments=rest))
            self._part = part
        return text

    def __call__(self, chunk: Chunk, found: list[Finding] | None = None) -> Chunk | None:
        """The chunk as it may be released (None: everything in it is held back for now).
        ``found``: what a scan of ``chunk.text`` already found, when the chunk is a whole answer."""
        out: list[ToolCallDelta] = []
        if chunk.finish_reason is not None and self._part is None and not self.tools and self.text.fresh:
            # A whole answer: each part is checked once, in full, in the order a stream releases them.
            text = self.text.whole(chunk.text, found) if chunk.text else ""
            for d in chunk.tool_calls:
                args = self._tool(d.index).whole(d.arguments) if d.arguments else ""
                if args or d.id or d.name:
                    out.append(replace(d, arguments=args))
        else:
            text = self._incremental(chunk, out)
        tools = tuple(out)
        if self.blocked:
            return None
        if text == chunk.text and tools == chunk.tool_calls:
            return chunk
        if not (text or tools or chunk.reasoning or chunk.finish_reason or chunk.usage or chunk.id):
            return None
        return replace(chunk, text=text, tool_calls=tools)

    def _incremental(self, chunk: Chunk, out: list[ToolCallDelta]) -> str:
        """Feed a piece of a streamed answer; the text released (tool-call deltas go to ``out``)."""
        text = ""
        if chunk.text:
            self._switch(None, out)
            text = self.text.feed(chunk.text)
        for d in chunk.tool_calls:
            text += self._switch(d.index, out)  # the text before a call goes out before it
            args = self._tool(d.index).feed(d.arguments) if d.arguments else ""
            if args or d.id or d.name:
                out.append(replace(d, arguments=args))
        if chunk.finish_reason is not None:
            text += self._switch(None, out) + self.text.close()
        return text


def _clean_or_found(engine: SafetyEngine, policy: Policy, redactor: Redactor, chunk: Chunk) -> list[Finding] | None:
    """None when a whole answer goes out exactly as it came: no part has a finding and no
    placeholder of the prompt's is to be put back. Else what its text's scan found (for the filter)."""
    found = engine.scan(chunk.text, policy, "output") if chunk.text else []
    if found:
        return found
    restores = policy.restore_redacted and bool(redactor)
    if restores and "[" in chunk.text:
        return found
    for d in chunk.tool_calls:
        if d.arguments and ((restores and "[" in d.arguments) or engine.scan(d.arguments, policy, "output")):
            return found
    return None


def _note_output(recorder: _Recorder, ctx: RequestContext, filt: _AnswerFilter) -> None:
    if filt.findings and not ctx.notes.get("safety_output_noted"):
        ctx.notes["safety_output_noted"] = True
        acts = [filt.policy.rule(f.category).action_for(f.score) or "flag" for f in filt.findings]
        action = max((f.action for f in filt.filters), key=ACTION_RANK.__getitem__)
        recorder.note(ctx, "output", "block" if filt.blocked else action, filt.findings, acts)
