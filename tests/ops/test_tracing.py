"""OpenTelemetry spans with the GenAI semantic conventions, checked with the SDK's in-memory
exporter; and no OpenTelemetry import at all when tracing is off."""

from __future__ import annotations

import subprocess
import sys

import pytest

from llmrelay import Message
from llmrelay.errors import ProviderUnavailableError
from llmrelay.ops.tracing import PROVIDER_KEY, TRACING_KEY
from llmrelay.relay import Relay
from llmrelay.testing import FakeProvider

sdk = pytest.importorskip("opentelemetry.sdk.trace")
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402
from opentelemetry.trace import SpanKind, StatusCode  # noqa: E402

CONFIG = {
    "providers": {"a": {"kind": "fake"}, "b": {"kind": "fake"}},
    "models": {"m": [{"provider": "a", "model": "echo-a"}, {"provider": "b", "model": "echo-b"}]},
    "storage": {"url": "sqlite://:memory:"},
    "routing": {"retries": 0, "backoff": {"base_s": 0, "max_s": 0}},
    "tracing": {"enabled": True, "exporter": "none"},
}


async def _traced_relay() -> tuple[Relay, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = sdk.TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    relay = Relay(CONFIG)
    relay.services.state[PROVIDER_KEY] = provider
    await relay.reload(relay.settings)
    return relay, exporter


async def test_one_span_per_request_and_per_attempt() -> None:
    relay, exporter = await _traced_relay()
    async with relay:
        first = relay.services.providers["a"]
        assert isinstance(first, FakeProvider)
        first.script([ProviderUnavailableError("a is down", provider="a")])
        result = await relay.chat(model="m", messages=[Message.user("hello there")], max_tokens=50, temperature=0)
    spans = exporter.get_finished_spans()
    request = [s for s in spans if s.kind == SpanKind.SERVER]
    attempts = sorted((s for s in spans if s.kind == SpanKind.CLIENT), key=lambda s: s.start_time or 0)
    assert len(request) == 1 and len(attempts) == 2
    req = request[0]
    assert req.name == "chat m"
    assert req.attributes is not None
    assert req.attributes["gen_ai.operation.name"] == "chat"
    assert req.attributes["gen_ai.request.model"] == "m"
    assert req.attributes["gen_ai.request.max_tokens"] == 50
    assert req.attributes["gen_ai.system"] == "fake"
    assert req.attributes["gen_ai.response.model"] == "echo-b"
    assert req.attributes["gen_ai.usage.input_tokens"] == result.usage.input_tokens
    assert req.attributes["gen_ai.usage.output_tokens"] == result.usage.output_tokens
    assert req.attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert req.attributes["llmrelay.attempts"] == 2
    failed, ok = attempts
    for span in attempts:
        assert span.parent is not None and span.parent.span_id == req.context.span_id
        assert span.context.trace_id == req.context.trace_id
    assert failed.name == "chat echo-a" and failed.status.status_code == StatusCode.ERROR
    assert failed.attributes is not None and failed.attributes["error.type"] == ProviderUnavailableError.code
    assert ok.name == "chat echo-b" and ok.status.status_code != StatusCode.ERROR
    assert ok.attributes is not None and ok.attributes["gen_ai.usage.output_tokens"] == result.usage.output_tokens
    # Never content.
    assert all("hello there" not in str(v) for s in spans for v in (s.attributes or {}).values())


async def test_streams_are_traced_until_their_end() -> None:
    relay, exporter = await _traced_relay()
    async with relay:
        chunks = [c async for c in relay.stream(model="m", messages=[Message.user("stream me please")])]
    assert chunks
    spans = exporter.get_finished_spans()
    assert [s.kind for s in spans].count(SpanKind.SERVER) == 1
    req = next(s for s in spans if s.kind == SpanKind.SERVER)
    assert req.attributes is not None and req.attributes["llmrelay.stream"] is True
    assert req.attributes["gen_ai.usage.output_tokens"] > 0


async def test_off_means_no_tracer() -> None:
    relay = Relay({**CONFIG, "tracing": {"enabled": False}})
    assert relay.services.state[TRACING_KEY] is None


def test_off_never_imports_opentelemetry() -> None:
    code = (
        "import sys, asyncio\n"
        "from llmrelay import Relay, Message\n"
        "r = Relay({'providers': {'f': {'kind': 'fake'}}, 'models': {'m': [{'provider': 'f', 'model': 'x'}]},"
        " 'storage': {'url': 'sqlite://:memory:'}})\n"
        "async def main():\n"
        "    async with r:\n"
        "        await r.chat(model='m', messages=[Message.user('hi')])\n"
        "asyncio.run(main())\n"
        "print(any(m.startswith('opentelemetry') for m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "False"
