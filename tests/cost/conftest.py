"""Fixtures for the cost tests: a relay over the fake provider with a price for it. The real Redis
and PostgreSQL servers (``redis_url``, ``postgres_url``) come from tests/conftest.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def relay_config(tmp: Path, **extra: Any) -> dict[str, Any]:
    return {
        "providers": {"fake": {"kind": "fake"}},
        "models": {"m": [{"provider": "fake", "model": "echo"}]},
        # $1 per million tokens in and out: a word costs a micro-dollar.
        "pricing": {"overrides": {"fake/echo": {"input_per_mtok": 1000.0, "output_per_mtok": 1000.0,
                                                  "max_output_tokens": 50}}},
        "storage": {"url": f"sqlite:///{tmp / 'ledger.db'}", "ledger_flush_s": 0.05},
        # Budgets are under test, not prompt scanning (it would dominate the CPU of a storm).
        "safety": {"level": "off"},
        **extra,
    }
