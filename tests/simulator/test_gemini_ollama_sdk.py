"""The official google-genai and ollama SDKs, pointed at the simulator, parse everything it answers."""

from __future__ import annotations

import httpx
import ollama
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as gt

PROMPT = "Why is the sky blue?"


def weather(city: str, days: int) -> str:
    """Forecast for a city."""
    return "sunny"


@pytest.fixture
def gemini(sim_url: str) -> genai.Client:
    return genai.Client(api_key="test-key", http_options=gt.HttpOptions(base_url=f"{sim_url}/gemini", api_version="v1beta"))


@pytest.fixture
def local(sim_url: str) -> ollama.Client:
    return ollama.Client(host=f"{sim_url}/ollama")


def test_gemini_generate_and_stream_agree(gemini: genai.Client) -> None:
    plain = gemini.models.generate_content(model="gemini-2.5-flash", contents=PROMPT)
    assert plain.text == f"This is a simulated answer to: {PROMPT}"
    chunks = list(gemini.models.generate_content_stream(model="gemini-2.5-flash", contents=PROMPT))
    assert len(chunks) > 1 and "".join(c.text or "" for c in chunks) == plain.text
    assert chunks[-1].usage_metadata == plain.usage_metadata
    assert chunks[-1].candidates[0].finish_reason == gt.FinishReason.STOP  # type: ignore[index]


def test_gemini_thoughts_and_function_call(gemini: genai.Client) -> None:
    config = gt.GenerateContentConfig(
        tools=[weather], automatic_function_calling=gt.AutomaticFunctionCallingConfig(disable=True),
        thinking_config=gt.ThinkingConfig(include_thoughts=True, thinking_budget=512))
    r = gemini.models.generate_content(model="gemini-2.5-flash", contents=PROMPT, config=config)
    parts = r.candidates[0].content.parts  # type: ignore[index, union-attr]
    assert parts[0].thought and parts[0].text  # type: ignore[index]
    calls = r.function_calls or []
    assert calls[0].name == "weather" and calls[0].args == {"city": "example city", "days": 1}
    usage = r.usage_metadata
    assert usage.thoughts_token_count and usage.total_token_count == (  # type: ignore[union-attr]
        usage.prompt_token_count + usage.candidates_token_count + usage.thoughts_token_count)  # type: ignore[union-attr, operator]


def test_gemini_count_embed_models(gemini: genai.Client) -> None:
    plain = gemini.models.generate_content(model="gemini-2.5-flash", contents=PROMPT)
    counted = gemini.models.count_tokens(model="gemini-2.5-flash", contents=PROMPT)
    assert counted.total_tokens == plain.usage_metadata.prompt_token_count  # type: ignore[union-attr]
    emb = gemini.models.embed_content(model="text-embedding-004", contents=["a", "b"],
                                      config=gt.EmbedContentConfig(output_dimensionality=32))
    assert [len(e.values or []) for e in emb.embeddings or []] == [32, 32]
    assert "models/gemini-2.5-flash" in [m.name for m in gemini.models.list()]


def test_gemini_errors(gemini: genai.Client, sim_url: str, http: httpx.Client) -> None:
    with pytest.raises(genai_errors.ClientError) as rl:
        gemini.models.generate_content(model="gemini-2.5-flash+fault=429", contents=PROMPT)
    assert rl.value.code == 429 and rl.value.status == "RESOURCE_EXHAUSTED"
    with pytest.raises(genai_errors.ServerError) as down:
        gemini.models.generate_content(model="gemini-2.5-flash+fault=503", contents=PROMPT)
    assert down.value.code == 503 and down.value.status == "UNAVAILABLE"
    no_key = http.post(f"{sim_url}/gemini/v1beta/models/gemini-2.5-flash:generateContent",
                        json={"contents": [{"parts": [{"text": "hi"}]}]})
    assert no_key.status_code == 403 and no_key.json()["error"]["status"] == "PERMISSION_DENIED"


def test_ollama_chat_and_stream_agree(local: ollama.Client) -> None:
    msgs = [{"role": "user", "content": PROMPT}]
    plain = local.chat(model="llama3.2", messages=msgs)
    assert plain.message.content == f"This is a simulated answer to: {PROMPT}" and plain.done_reason == "stop"
    parts = list(local.chat(model="llama3.2", messages=msgs, stream=True))
    assert "".join(p.message.content or "" for p in parts) == plain.message.content
    assert parts[-1].done and parts[-1].eval_count == plain.eval_count
    assert parts[-1].prompt_eval_count == plain.prompt_eval_count


def test_ollama_tools_thinking_images(local: ollama.Client) -> None:
    msgs = [{"role": "user", "content": PROMPT, "images": ["iVBORw0KGgo="]}]
    r = local.chat(model="qwen3", messages=msgs, tools=[weather], think=True)
    assert r.message.thinking and r.message.tool_calls
    assert r.message.tool_calls[0].function.arguments == {"city": "example city", "days": 1}
    follow = [*msgs, r.message, {"role": "tool", "content": "rain all week", "tool_name": "weather"}]
    r2 = local.chat(model="qwen3", messages=follow, tools=[weather])
    assert "rain all week" in (r2.message.content or "") and "I see 1 image" in (r2.message.content or "")


def test_ollama_tags_embed_version_errors(local: ollama.Client, sim_url: str, http: httpx.Client) -> None:
    assert "llama3.2:latest" in [m.model for m in local.list().models]
    e = local.embed(model="nomic-embed-text", input=["x", "y", "x"])
    assert e.embeddings[0] == e.embeddings[2] != e.embeddings[1]
    assert http.get(f"{sim_url}/ollama/api/version").json()["version"]
    with pytest.raises(ollama.ResponseError) as missing:
        local.chat(model="unknown-model", messages=[{"role": "user", "content": "x"}])
    assert missing.value.status_code == 404 and "not found" in missing.value.error
