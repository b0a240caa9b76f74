"""``llmrelay keys create`` / ``keys revoke`` leave the same audit entries as the admin API's key
routes (plus ``via: cli``), sealed on the chain, which still verifies; nothing is recorded for a
revoke that found no key, nor when the audit log is off."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from llmrelay.cli import main
from llmrelay.config import Settings
from llmrelay.safety.audit import AuditLog


def _config(tmp_path: Path, audit: bool = True) -> Path:
    cfg = tmp_path / "llmrelay.yaml"
    cfg.write_text(f"storage: {{url: 'sqlite:///{tmp_path}/gw.db'}}\nsafety: {{audit: {str(audit).lower()}}}\n")
    return cfg


def _entries(tmp_path: Path) -> tuple[list[Any], bool]:
    async def read() -> tuple[list[Any], bool]:
        log = AuditLog.from_settings(Settings.from_dict({"storage": {"url": f"sqlite:///{tmp_path}/gw.db"}}))
        try:
            return await log.entries(), (await log.verify()).ok
        finally:
            await log.store.aclose()

    return asyncio.run(read())


def test_create_and_revoke_are_audited(tmp_path: Path) -> None:
    cfg = str(_config(tmp_path))
    runner = CliRunner()
    made = runner.invoke(main, ["keys", "create", "--name", "ci", "--team", "ml", "--user", "ann", "--json", "--config", cfg])
    assert made.exit_code == 0, made.output
    key_id = json.loads(made.output)["id"]
    assert runner.invoke(main, ["keys", "revoke", key_id, "--config", cfg]).exit_code == 0
    assert runner.invoke(main, ["keys", "revoke", "key_nope", "--config", cfg]).exit_code == 1
    entries, ok = _entries(tmp_path)
    assert ok
    assert [e.kind for e in entries] == ["admin.key_created", "admin.key_revoked"]
    created, revoked = (json.loads(e.data) for e in entries)
    assert created == {"key_id": key_id, "name": "ci", "team": "ml", "via": "cli"}
    assert revoked == {"key_id": key_id, "via": "cli"}
    # The creating user is recorded by pseudonym only, as the admin API does.
    assert entries[0].subject and entries[0].subject.startswith("u_") and entries[1].subject is None
    assert "ann" not in entries[0].data


def test_nothing_recorded_when_audit_is_off(tmp_path: Path) -> None:
    cfg = str(_config(tmp_path, audit=False))
    made = CliRunner().invoke(main, ["keys", "create", "--name", "quiet", "--json", "--config", cfg])
    assert made.exit_code == 0, made.output
    assert _entries(tmp_path)[0] == []
