"""Fixtures for the caching tests: a relay over the fake provider with a price for it (so saved cost
is visible). The real redis-server (``redis_url``) comes from tests/conftest.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from llmrelay import Relay
from llmrelay.clock import ManualClock


def relay_config(tmp: Path, cache: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "providers": {"fake": {"kind": "fake"}},
        "models": {"m": [{"provider": "fake", "model": "echo"}], "other": [{"provider": "fake", "model": "echo"}]},
        # $1000 per million tokens: a word costs a tenth of a cent, so savings are visible.
        "pricing": {"overrides": {"fake/echo": {"input_per_mtok": 1000.0, "output_per_mtok": 1000.0}}},
        "storage": {"url": f"sqlite:///{tmp / 'ledger.db'}"},
        "cache": {"enabled": True, **(cache or {})},
        **extra,
    }


def make_relay(tmp: Path, clock: ManualClock | None = None, cache: dict[str, Any] | None = None,
               **extra: Any) -> Relay:
    return Relay(relay_config(tmp, cache, **extra), clock=clock)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()
