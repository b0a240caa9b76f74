"""Shared fixtures. Wire recordings live in ../shared/data/wire beside the checkout."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("LLMRELAY_SHARED", REPO.parent / "shared"))
WIRE = SHARED / "data" / "wire"
SAFETY_DATA = SHARED / "data" / "safety"


@pytest.fixture
def wire_dir() -> Path:
    if not WIRE.is_dir():
        pytest.skip(f"no recorded exchanges at {WIRE}")
    return WIRE
