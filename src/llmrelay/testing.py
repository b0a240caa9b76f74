"""A fake provider you can script, for testing code that uses llmrelay (and llmrelay itself).

    from llmrelay import Relay, Message
    from llmrelay.testing import FakeProvider

    relay = Relay({"providers": {"fake": {"kind": "fake"}},
                   "models": {"m": [{"provider": "fake", "model": "echo"}]}})
    fake: FakeProvider = relay.services.providers["fake"]
    fake.script(["Hello!", ["Hel", "lo", "!"], RateLimitError("slow down")])
    # 1st call answers "Hello!", 2nd streams three chunks, 3rd raises.

Without a script it echoes the last user message. Config options: ``replies`` (a list of strings
used in turn), ``chunk_size`` (characters per streamed chunk), ``latency_s``.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import replace
from typing import Any

from .errors import LLMRelayError
from .providers.base import Capabilities, Provider, ProviderSettings
from .streaming import Assembler
from .types import ChatRequest, ChatResult, Chunk, EmbeddingRequest, EmbeddingResult, ModelInfo, Usage

Step = str | Sequence[str | Chunk] | ChatResult | LLMRelayError


def count_words(text: str) -> int:
    return max(1, len(text.split()))


class FakeProvider(Provider):
    kind = "fake"
    capabilities = Capabilities(embeddings=True, prefill=True)

    def __init__(self, settings: ProviderSettings | None = None, transport: Any = None) -> None:
        super().__init__(settings or ProviderSettings(name="fake", kind="fake"))
        opts = self.settings.options
        self._replies = itertools.cycle(opts["replies"]) if opts.get("replies") else None
        self.chunk_size = int(opts.get("chunk_size", 8))
        self.latency_s = float(opts.get("latency_s", 0.0))
        self._script: list[Step] = []
        self.calls: list[ChatRequest] = []

    def script(self, steps: Iterable[Step]) -> None:
        """Queue answers for the next calls, in order; then it falls back to echoing."""
        self._script.extend(steps)

    def _next_step(self, request: ChatRequest) -> Step:
        if self._script:
            return self._script.pop(0)
        if self._replies is not None:
            return str(next(self._replies))
        last = next((m for m in reversed(request.messages) if m.role == "user"), None)
        return f"You said: {last.text() if last else ''}"

    def _usage(self, request: ChatRequest, text: str) -> Usage:
        prompt = sum(count_words(m.text()) for m in request.messages)
        return Usage(input_tokens=prompt, output_tokens=count_words(text))

    def _chunks(self, request: ChatRequest, step: Step) -> list[Chunk]:
        if isinstance(step, ChatResult):
            return list(step.to_chunks())
        if isinstance(step, str):
            n = max(1, self.chunk_size)
            pieces: list[str | Chunk] = [step[i : i + n] for i in range(0, len(step), n)] or [""]
        elif isinstance(step, LLMRelayError):
            raise step
        else:
            pieces = list(step)
        chunks = [p if isinstance(p, Chunk) else Chunk(text=p) for p in pieces]
        if not any(c.finish_reason for c in chunks):
            text = "".join(c.text for c in chunks)
            chunks.append(Chunk(finish_reason="stop", usage=self._usage(request, text)))
        return [replace(chunks[0], id=chunks[0].id or "fake-1", model=request.model), *chunks[1:]]

    async def complete(self, request: ChatRequest) -> ChatResult:
        self.calls.append(request)
        step = self._next_step(request)
        if isinstance(step, LLMRelayError):
            step.provider = step.provider or self.name
            raise step
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        asm = Assembler()
        for c in self._chunks(request, step):
            asm.add(c)
        return asm.result(provider=self.name)

    async def stream(self, request: ChatRequest) -> AsyncIterator[Chunk]:
        self.calls.append(request)
        step = self._next_step(request)
        if isinstance(step, LLMRelayError):
            step.provider = step.provider or self.name
            raise step
        for c in self._chunks(request, step):
            if self.latency_s:
                await asyncio.sleep(self.latency_s)
            yield c

    async def list_models(self) -> list[ModelInfo]:
        return [ModelInfo(id="echo", provider=self.name)]

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResult:
        vectors = tuple(tuple(float((hash(t) >> i) & 0xFF) / 255 for i in range(0, 64, 8)) for t in request.input)
        return EmbeddingResult(
            model=request.model,
            vectors=vectors,
            usage=Usage(input_tokens=sum(count_words(t) for t in request.input)),
            provider=self.name,
        )
