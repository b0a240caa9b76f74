"""Every recorded exchange with a priced model costs published price x recorded tokens.

The expected cost is computed here independently of the engine: usage is read from the raw
response JSON by a minimal reader per wire format, prices from genai-prices' raw price objects,
and the arithmetic is done in Decimal. Only the engine's answer goes through llmrelay.cost.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from genai_prices.data import providers as RAW

from llmrelay.config import PricingConfig
from llmrelay.context import RequestContext
from llmrelay.cost.pricing import PricingEngine
from llmrelay.types import Usage

# folder -> (provider kind in llmrelay, genai-prices provider id, wire format)
FOLDERS = {
    "openai": ("openai", "openai", "openai"), "groq": ("groq", "groq", "openai"),
    "mistral": ("mistral", "mistral", "openai"), "deepseek": ("deepseek", "deepseek", "openai"),
    "openrouter": ("openrouter", "openrouter", "openai"), "anthropic": ("anthropic", "anthropic", "anthropic"),
    "google": ("gemini", "google", "google"),
}


def read_usage(fmt: str, body: dict[str, Any]) -> dict[str, int] | None:
    """Raw usage in OpenAI semantics: input includes cache, output includes reasoning."""
    if fmt == "google":
        u = body.get("usageMetadata")
        if not u or "promptTokenCount" not in u:
            return None
        return {"input": u["promptTokenCount"] + u.get("toolUsePromptTokenCount", 0),
                "output": u.get("candidatesTokenCount", 0) + u.get("thoughtsTokenCount", 0),
                "cache_read": u.get("cachedContentTokenCount", 0), "reasoning": u.get("thoughtsTokenCount", 0)}
    u = body.get("usage")
    if not isinstance(u, dict):
        return None
    if fmt == "anthropic":
        if "input_tokens" not in u:
            return None
        cw = u.get("cache_creation_input_tokens") or 0
        cr = u.get("cache_read_input_tokens") or 0
        w1h = (u.get("cache_creation") or {}).get("ephemeral_1h_input_tokens", 0) or 0
        return {"input": u["input_tokens"] + cw + cr, "output": u["output_tokens"], "cache_read": cr,
                "cache_write": cw, "cache_write_1h": w1h}
    if "prompt_tokens" in u:
        details = u.get("prompt_tokens_details") or {}
        out_details = u.get("completion_tokens_details") or {}
        cached = details.get("cached_tokens") or u.get("prompt_cache_hit_tokens") or 0
        return {"input": u["prompt_tokens"], "output": u.get("completion_tokens") or 0, "cache_read": cached,
                "reasoning": out_details.get("reasoning_tokens") or 0}
    if "input_tokens" in u:  # the Responses API
        return {"input": u["input_tokens"], "output": u["output_tokens"],
                "cache_read": (u.get("input_tokens_details") or {}).get("cached_tokens") or 0,
                "reasoning": (u.get("output_tokens_details") or {}).get("reasoning_tokens") or 0}
    return None


def _price(mp: Any, key: str, tokens_in: int) -> Decimal | None:
    v = getattr(mp, key, None)
    if v is None or isinstance(v, Decimal):
        return v
    price = v.base
    for tier in v.tiers:
        if tokens_in > tier.start:
            price = tier.price
    return price


def expected_cost(pid: str, model: str, u: dict[str, int]) -> Decimal | None:
    provider = next(p for p in RAW if p.id == pid)
    info = provider.find_model(model, all_providers=RAW)
    if info is None:
        return None
    from datetime import UTC, datetime

    mp = info.get_prices(datetime.now(UTC))
    n = u["input"]
    inp, out = _price(mp, "input_mtok", n), _price(mp, "output_mtok", n)
    if inp is None or out is None:
        return None
    cr, cw = u.get("cache_read", 0), u.get("cache_write", 0)
    w1h = u.get("cache_write_1h", 0)
    read_p = _price(mp, "cache_read_mtok", n) or inp
    write_p = _price(mp, "cache_write_mtok", n) or inp
    write1h_p = _price(mp, "cache_write_1h_mtok", n) or write_p
    reason_p = _price(mp, "output_reasoning_mtok", n) or out
    r = u.get("reasoning", 0)
    total = ((n - cr - cw) * inp + cr * read_p + (cw - w1h) * write_p + w1h * write1h_p
             + (u["output"] - r) * out + r * reason_p)
    return total / Decimal(1_000_000)


def sse_data(text: str) -> list[dict[str, Any]]:
    """The JSON objects of an SSE body's ``data:`` lines (``[DONE]`` and non-JSON lines skipped)."""
    out = []
    for line in text.splitlines():
        if not line.startswith("data:"):
            continue
        payload = line[5:].strip()
        if payload and payload != "[DONE]":
            try:
                obj = json.loads(payload)
            except ValueError:
                continue
            if isinstance(obj, dict):
                out.append(obj)
    return out


def final_of_stream(fmt: str, events: list[dict[str, Any]]) -> dict[str, Any] | None:
    """A streamed answer's model and final usage, in the shape of that API's non-streamed body.

    OpenAI-compatible: the last chunk carrying a ``usage`` object (the Responses API: the
    ``response.completed`` event's response). Anthropic: ``message_start``'s usage, updated by each
    ``message_delta``'s (output tokens are cumulative; some fields arrive only at the end). Gemini:
    the last ``usageMetadata`` (each chunk repeats the running totals).
    """
    model: str | None = None
    usage: dict[str, Any] | None = None
    for e in events:
        if fmt == "anthropic":
            if e.get("type") == "message_start":
                msg = e.get("message") or {}
                model, usage = msg.get("model"), dict(msg.get("usage") or {})
            elif e.get("type") == "message_delta" and usage is not None:
                usage.update({k: v for k, v in (e.get("usage") or {}).items() if v is not None})
        elif fmt == "google":
            model = e.get("modelVersion") or model
            usage = e.get("usageMetadata") or usage
        else:
            inner = e.get("response") if e.get("type") == "response.completed" else e
            if isinstance(inner, dict):
                model = inner.get("model") or model
                if isinstance(inner.get("usage"), dict):
                    usage = inner["usage"]
    if model is None or usage is None:
        return None
    return {"modelVersion": model, "usageMetadata": usage} if fmt == "google" else {"model": model, "usage": usage}


def _stream_text(response: dict[str, Any]) -> str | None:
    body = response.get("body")
    text = body.get("string") if isinstance(body, dict) else None
    if isinstance(text, bytes):
        try:
            text = text.decode()
        except UnicodeDecodeError:
            return None
    return text if isinstance(text, str) and "data:" in text else None


def recorded(wire: Path, streamed: bool = False) -> list[tuple[str, str, dict[str, Any]]]:
    """200 answers per folder: the parsed JSON bodies, or (``streamed``) each SSE body's final usage."""
    out = []
    for folder in FOLDERS:
        fmt = FOLDERS[folder][2]
        for f in sorted((wire / folder).glob("*.yaml")):
            for it in (yaml.safe_load(f.read_text()) or {}).get("interactions", []):
                response = it["response"]
                if response.get("status", {}).get("code") != 200:
                    continue
                if not streamed:
                    body = response.get("parsed_body")
                    if isinstance(body, dict):
                        out.append((folder, f.name, body))
                elif (text := _stream_text(response)) is not None:
                    final = final_of_stream(fmt, sse_data(text))
                    if final is not None:
                        out.append((folder, f.name, final))
    return out


def check_costs(answers: list[tuple[str, str, dict[str, Any]]]) -> dict[str, int]:
    """Price every answer through the engine and against the raw price data; checked per folder."""
    engine = PricingEngine(PricingConfig())
    seen: dict[str, int] = {}
    for folder, name, body in answers:
        kind, pid, fmt = FOLDERS[folder]
        model = body.get("model") or body.get("modelVersion")
        u = read_usage(fmt, body)
        if not model or u is None:
            continue
        want = expected_cost(pid, model, u)
        ctx = RequestContext(provider=folder, provider_kind=kind, upstream_model=model)
        ctx.usage = Usage(input_tokens=u["input"], output_tokens=u["output"], cache_read_tokens=u.get("cache_read", 0),
                          cache_write_tokens=u.get("cache_write", 0), cache_write_1h_tokens=u.get("cache_write_1h", 0),
                          reasoning_tokens=u.get("reasoning", 0))
        engine.apply(ctx)
        if want is None:
            assert ctx.unpriced, f"{folder}/{name}: {model} has no published price but was priced"
            continue
        assert not ctx.unpriced, f"{folder}/{name}: {model} is priced in genai-prices"
        assert ctx.cost_usd == pytest.approx(float(want), rel=1e-9, abs=1e-15), f"{folder}/{name} {model} {u}"
        seen[folder] = seen.get(folder, 0) + 1
    return seen


def test_recorded_costs_match_published_prices(wire_dir: Path) -> None:
    seen = check_costs(recorded(wire_dir))
    assert sum(seen.values()) >= 100 and len(seen) >= 5, seen


def test_streamed_recordings_cost_published_price_times_final_usage(wire_dir: Path) -> None:
    answers = recorded(wire_dir, streamed=True)
    seen = check_costs(answers)
    # Every wire format's streams are covered: OpenAI-compatible, Anthropic and Gemini.
    assert {"anthropic", "google"} <= set(seen) and len(set(seen) - {"anthropic", "google"}) >= 3, seen
    assert sum(seen.values()) >= 15, (seen, len(answers))


def test_stream_readers_take_the_final_usage() -> None:
    anthropic = [{"type": "message_start", "message": {"model": "claude-x", "usage": {
                     "input_tokens": 10, "cache_read_input_tokens": 5, "output_tokens": 1}}},
                 {"type": "message_delta", "usage": {"output_tokens": 42, "input_tokens": None}}]
    assert final_of_stream("anthropic", anthropic) == {"model": "claude-x", "usage": {
        "input_tokens": 10, "cache_read_input_tokens": 5, "output_tokens": 42}}
    google = [{"modelVersion": "g", "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 1}},
              {"modelVersion": "g", "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 9}}]
    assert final_of_stream("google", google) == {"modelVersion": "g", "usageMetadata": {
        "promptTokenCount": 3, "candidatesTokenCount": 9}}
    text = 'data: {"model": "m", "usage": null}\n\ndata: {"model": "m", "usage": {"prompt_tokens": 4}}\n\ndata: [DONE]\n'
    assert final_of_stream("openai", sse_data(text)) == {"model": "m", "usage": {"prompt_tokens": 4}}


def test_cached_and_reasoning_tokens_are_priced_differently() -> None:
    engine = PricingEngine(PricingConfig())
    plain = engine.quote("a", "anthropic", "claude-sonnet-4-5", Usage(input_tokens=10_000, output_tokens=100))
    cached = engine.quote("a", "anthropic", "claude-sonnet-4-5",
                          Usage(input_tokens=10_000, output_tokens=100, cache_read_tokens=8_000))
    written_1h = engine.quote("a", "anthropic", "claude-sonnet-4-5",
                              Usage(input_tokens=10_000, output_tokens=100, cache_write_tokens=8_000,
                                    cache_write_1h_tokens=8_000))
    assert cached.cost_usd < plain.cost_usd < written_1h.cost_usd
    long = engine.quote("a", "anthropic", "claude-sonnet-4-5", Usage(input_tokens=250_000, output_tokens=100))
    assert long.prices is not None
    # Above the 200k context tier every token pays the higher rate, not just the excess.
    rate = long.prices.rates_for(250_000)
    assert rate.input > long.prices.base.input
    assert long.cost_usd == pytest.approx((250_000 * rate.input + 100 * rate.output) / 1e6)
