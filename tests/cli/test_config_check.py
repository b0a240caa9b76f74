"""``llmrelay config check`` reports schema errors and cross references (a model group naming an
unknown provider, an empty group) in the same run, each with its file and line."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from llmrelay.cli import main
from llmrelay.config import ConfigProblems, Settings, load_settings

BROKEN = """\
server:
  port: not-a-port
providers:
  sim: {kind: openai, base_url: "http://127.0.0.1:9/v1"}
  local: {kind: ollama}
models:
  fast:
    - {provider: local, model: llama3.2}
    - {provider: simm, model: gpt-4o-mini}
  empty: []
  smart: [{provider: nowhere, model: x, weight: -1}]
"""


def test_schema_and_cross_reference_problems_in_one_run(tmp_path: Path) -> None:
    cfg = tmp_path / "llmrelay.yaml"
    cfg.write_text(BROKEN)
    out = CliRunner().invoke(main, ["config", "check", str(cfg)])
    assert out.exit_code == 1
    lines = out.output.splitlines()
    assert f"{cfg}:2: server.port" in lines[0]
    expected = [
        f"{cfg}:9: models.fast.1.provider: no provider named 'simm'; did you mean 'sim'?",
        f"{cfg}:10: models.empty: a model group needs at least one deployment",
        f"{cfg}:11: models.smart.0.provider: no provider named 'nowhere'",
    ]
    for line in expected:
        assert line in lines
    assert any(f"{cfg}:11: models.smart.0.weight" in x for x in lines)  # the schema error on the same line
    assert lines[-1] == f"{cfg}: 5 problem(s)"


def test_cross_references_alone_have_their_own_lines(tmp_path: Path) -> None:
    cfg = tmp_path / "llmrelay.yaml"
    cfg.write_text("providers: {sim: {kind: fake}}\nmodels:\n  m: [{provider: sim, model: a}]\n  n: [{provider: mis, model: b}]\n")
    with pytest.raises(ConfigProblems) as info:
        load_settings(cfg, env={})
    assert info.value.problems == [f"{cfg}:4: models.n.0.provider: no provider named 'mis'"]


def test_from_dict_reports_each_cross_reference() -> None:
    with pytest.raises(ConfigProblems) as info:
        Settings.from_dict({"server": {"port": -5}, "models": {"m": [{"provider": "p", "model": "x"}]}})
    problems = info.value.problems
    assert len(problems) == 2 and problems[1] == "models.m.0.provider: no provider named 'p'"
