"""With no configured budget and no emergency brake, the budget layer passes a request whose key
has no budget of its own straight through (no per-caller lookup), and still enforces a key's own
budget exactly as the full lookup does."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from llmrelay import Message, Relay
from llmrelay.context import RequestContext
from llmrelay.cost.budgets import BudgetManager
from llmrelay.errors import BudgetExceededError


def config(tmp: Path, budgets: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "providers": {"fake": {"kind": "fake"}},
        "models": {"m": [{"provider": "fake", "model": "echo"}]},
        "pricing": {"overrides": {"fake/echo": {"input_per_mtok": 1000.0, "output_per_mtok": 1000.0,
                                                  "max_output_tokens": 50}}},
        "storage": {"url": f"sqlite:///{tmp / 'ledger.db'}"},
        "safety": {"level": "off"},
        "cache": {"enabled": False},
        "budgets": budgets or [],
    }


def key(budget_usd: float | None) -> Any:
    return SimpleNamespace(id="k1", name="k", user=None, team=None, models=(), budget_usd=budget_usd,
                           budget_period="total" if budget_usd else None, rpm=None, tpm=None, policy=None,
                           priority="normal", expires_at=None, revoked=False, allows=lambda model: True)


def counted(manager: BudgetManager) -> list[int]:
    calls: list[int] = []
    applicable = manager.applicable

    def counting(ctx: RequestContext, model: str | None = None) -> Any:
        calls.append(1)
        return applicable(ctx, model)

    manager.applicable = counting  # type: ignore[method-assign]
    return calls


async def ask(relay: Relay, k: Any) -> RequestContext:
    ctx = RequestContext()
    ctx.key, ctx.key_id = k, (k.id if k is not None else None)
    await relay.chat(model="m", messages=[Message.user("what is two and two")], ctx=ctx)
    return ctx


@pytest.mark.parametrize("k", [None, key(None)], ids=["no key", "key without budget"])
async def test_no_budget_anywhere_skips_the_lookup(tmp_path: Path, k: Any) -> None:
    async with Relay(config(tmp_path)) as relay:
        calls = counted(relay.services.budgets)
        ctx = await ask(relay, k)
        assert ctx.cost_usd > 0
        assert calls == []


async def test_a_key_budget_is_still_enforced_without_configured_rules(tmp_path: Path) -> None:
    async with Relay(config(tmp_path)) as relay:
        manager: BudgetManager = relay.services.budgets
        calls = counted(manager)
        # The worst case of a 50-token answer at $1,000 per million tokens is ~$0.05: does not fit.
        with pytest.raises(BudgetExceededError, match="would be exceeded"):
            await ask(relay, key(0.01))
        assert calls == [1]
        ok = await ask(relay, key(10.0))  # another limit: its own counter, and it fits
        assert ok.cost_usd > 0
        applied = manager.applicable(ok, "m")
        assert [a.rule.scope for a in applied] == ["key"]
        spent = await manager.counters.get([a.key for a in applied])
        assert spent[0] / 1_000_000 == pytest.approx(ok.cost_usd, abs=1e-6)


async def test_a_configured_rule_still_applies_to_a_request_without_a_key(tmp_path: Path) -> None:
    async with Relay(config(tmp_path, [{"scope": "global", "period": "total", "limit_usd": 100.0}])) as relay:
        calls = counted(relay.services.budgets)
        ctx = await ask(relay, None)
        assert calls == [1]
        assert float((await relay.services.budgets.status())[0]["spent_usd"]) == pytest.approx(ctx.cost_usd, abs=1e-6)
