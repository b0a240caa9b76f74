"""Every recorded exchange with a priced model costs published price x recorded tokens.

The expected cost is computed here independently of the engine: usage is read from the raw
response JSON by a minimal reader per wire format, prices from genai-prices' raw price objects,
and the arithmetic is done in Decimal. Only the engine's answer goes through llmrelay.cost.
"""

from __future__ import annotations

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


def recorded(wire: Path) -> list[tuple[str, str, dict[str, Any]]]:
    out = []
    for folder in FOLDERS:
        for f in sorted((wire / folder).glob("*.yaml")):
            for it in (yaml.safe_load(f.read_text()) or {}).get("interactions", []):
                body = it["response"].get("parsed_body")
                if isinstance(body, dict) and it["response"].get("status", {}).get("code") == 200:
                    out.append((folder, f.name, body))
    return out


def test_recorded_costs_match_published_prices(wire_dir: Path) -> None:
    engine = PricingEngine(PricingConfig())
    checked = per_folder = 0
    seen: dict[str, int] = {}
    for folder, name, body in recorded(wire_dir):
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
        checked += 1
        seen[folder] = seen.get(folder, 0) + 1
    per_folder = len(seen)
    assert checked >= 100 and per_folder >= 5, (checked, seen)


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
