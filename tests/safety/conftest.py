"""Fixtures for the safety tests: an engine and an SQLite audit log (PostgreSQL: ``postgres_url``
from tests/conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from llmrelay.safety.audit import AuditLog
from llmrelay.safety.audit_store import open_store
from llmrelay.safety.engine import SafetyEngine


@pytest.fixture(scope="session")
def engine() -> SafetyEngine:
    return SafetyEngine()


@pytest.fixture
def secret() -> bytes:
    return b"test-secret-0123456789"


@pytest.fixture
async def sqlite_log(tmp_path: Path, secret: bytes) -> AsyncIterator[AuditLog]:
    log = AuditLog(open_store(f"sqlite:///{tmp_path}/audit.db"), secret, clock=iter(range(1_000, 10_000)).__next__)
    yield log
    await log.store.aclose()
