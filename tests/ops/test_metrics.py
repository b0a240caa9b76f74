"""/metrics after real requests, parsed with prometheus_client's parser: the request counter, the
latency histogram, tokens and cost equal what the requests reported. And every metric in
llmrelay.metrics is updated by the code that owns it."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from llmrelay.metrics import Metrics

from .conftest import admin_headers, serve_file

SRC = Path(__file__).resolve().parents[2] / "src" / "llmrelay"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def total(values: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return sum(v for (n, ls), v in values.items() if n == name and all((k, w) in ls for k, w in labels.items()))


async def test_scrape_matches_the_requests_made(config_path: Path) -> None:
    n_plain, n_stream = 12, 8
    seen = defaultdict(float)
    with serve_file(config_path, watch_interval_s=3600) as gw:
        async with aiohttp.ClientSession() as http:
            for i in range(n_plain + n_stream):
                stream = i >= n_plain
                body = {"model": "m", "messages": [{"role": "user", "content": "count these words " * (i + 1)}],
                        "stream": stream, **({"stream_options": {"include_usage": True}} if stream else {})}
                async with http.post(f"{gw.url}/v1/chat/completions", json=body, headers=admin_headers()) as r:
                    assert r.status == 200
                    usage = _stream_usage(await r.text()) if stream else (await r.json())["usage"]
                seen["input"] += usage["prompt_tokens"]
                seen["output"] += usage["completion_tokens"]
                seen["cost"] += usage["cost"]
            async with http.get(f"{gw.url}/metrics") as r:
                assert r.status == 200
                text = await r.text()
    values = samples(text)
    assert total(values, "llmrelay_requests_total", model="m", provider="fake", status="ok") == n_plain + n_stream
    assert total(values, "llmrelay_request_duration_seconds_count", model="m") == n_plain + n_stream
    assert total(values, "llmrelay_request_duration_seconds_bucket", model="m", le="+Inf") == n_plain + n_stream
    assert total(values, "llmrelay_request_duration_seconds_sum", model="m") > 0
    assert total(values, "llmrelay_time_to_first_token_seconds_count", model="m") == n_stream
    assert total(values, "llmrelay_tokens_total", model="m", kind="input") == seen["input"] > 0
    assert total(values, "llmrelay_tokens_total", model="m", kind="output") == seen["output"] > 0
    assert abs(total(values, "llmrelay_cost_usd_total", model="m") - seen["cost"]) < 1e-9
    # The configured price: $1 / $2 per million input / output tokens.
    assert abs(seen["cost"] - (seen["input"] * 1.0 + seen["output"] * 2.0) / 1e6) < 1e-12
    assert total(values, "llmrelay_upstream_attempts_total", provider="fake", outcome="ok") == n_plain + n_stream


def _stream_usage(text: str) -> dict[str, float]:
    import json

    usage = None
    for line in text.splitlines():
        if line.startswith("data: {"):
            chunk = json.loads(line[6:])
            usage = chunk.get("usage") or usage
    assert usage is not None, "no usage chunk in the stream"
    return usage


def test_every_metric_is_updated_by_its_owner() -> None:
    attrs = [a for a, v in vars(Metrics()).items() if a != "registry" and hasattr(v, "_name")]
    code = "\n".join(p.read_text() for p in SRC.rglob("*.py") if p.name != "metrics.py")
    missing = {a for a in attrs if not re.search(rf"metrics\.{a}\b|\.{a}\.labels\(|\.{a}\.(inc|set|observe)\(|getattr\([^)]*[\"']{a}[\"']", code)}
    assert len(attrs) >= 20
    assert missing == set(), f"metrics nothing updates: {sorted(missing)}"
