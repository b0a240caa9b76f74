"""External moderation against the simulator's ``/openai/v1/moderations`` over loopback HTTP:
hits become findings, a timeout or an upstream error fails open or closed as configured, and the
engine's policy turns a hit into a block."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from llmrelay.safety.engine import SafetyEngine
from llmrelay.safety.moderation import ModerationConfig, Moderator
from llmrelay.safety.policy import policy_for_level
from llmrelay.simulator.server import serve_in_thread
from llmrelay.transport import AiohttpTransport


@pytest.fixture(scope="module")
def sim_url() -> Iterator[str]:
    with serve_in_thread() as url:
        yield url + "/openai/v1"


@pytest.fixture
async def transport() -> AsyncIterator[AiohttpTransport]:
    t = AiohttpTransport()
    yield t
    await t.aclose()


def _moderator(url: str, transport: AiohttpTransport, **kw: object) -> Moderator:
    return Moderator(ModerationConfig.model_validate({"kind": "openai", "base_url": url, "api_key": "x", **kw}), transport=transport)


async def test_flagged_text_becomes_moderation_findings_that_block(sim_url: str, transport: AiohttpTransport) -> None:
    mod = _moderator(sim_url, transport)
    text = "I will bomb the station"
    findings, error = await mod.check(text)
    assert error is None
    assert [f.type for f in findings] == ["VIOLENCE"]
    assert (findings[0].start, findings[0].end) == (0, len(text)) and findings[0].score >= 0.5
    engine = SafetyEngine()
    decision = engine.decide(text, findings, policy_for_level("moderate"))
    assert decision.action == "block"
    assert engine.decide(text, findings, policy_for_level("low")).action == "flag"


async def test_clean_text_has_no_findings(sim_url: str, transport: AiohttpTransport) -> None:
    findings, error = await _moderator(sim_url, transport).check("What is the capital of France?")
    assert (findings, error) == ([], None)


@pytest.mark.parametrize(("on_error", "blocked"), [("fail_open", False), ("fail_closed", True)])
async def test_timeout_fails_open_or_closed(sim_url: str, transport: AiohttpTransport, on_error: str, blocked: bool) -> None:
    # The simulator holds the answer 1.5 s; the moderator gives up after 0.2 s.
    mod = _moderator(sim_url, transport, model="omni-moderation-latest+latency=1500", timeout_s=0.2, on_error=on_error)
    findings, error = await mod.check("I will bomb the station")
    assert error is not None and "Timeout" in error
    assert bool(findings) is blocked
    if blocked:
        assert findings[0].type == "UNAVAILABLE"
        assert SafetyEngine().decide("x", findings, policy_for_level("moderate")).action == "block"


@pytest.mark.parametrize(("on_error", "blocked"), [("fail_open", False), ("fail_closed", True)])
async def test_upstream_error_fails_open_or_closed(sim_url: str, transport: AiohttpTransport, on_error: str, blocked: bool) -> None:
    mod = _moderator(sim_url, transport, model="omni-moderation-latest+fault=status,status=503", on_error=on_error)
    findings, error = await mod.check("hello")
    assert error is not None and "503" in error
    assert bool(findings) is blocked


async def test_unreachable_service_fails_closed(transport: AiohttpTransport) -> None:
    mod = _moderator("http://127.0.0.1:9/openai/v1", transport, timeout_s=1, on_error="fail_closed")
    findings, error = await mod.check("hello")
    assert error is not None
    assert [f.type for f in findings] == ["UNAVAILABLE"]
