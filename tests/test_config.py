from __future__ import annotations

from pathlib import Path

import pytest

from llmrelay.config import ConfigProblems, Settings, expand_env, load_settings


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "llmrelay.yaml"
    p.write_text(text)
    return p


def test_env_expansion() -> None:
    env = {"A": "1", "EMPTY": ""}
    assert expand_env("${A}-${B:-two}-${EMPTY:-dflt}-${MISSING}", env) == "1-two-dflt-"


def test_design_example_loads(tmp_path: Path) -> None:
    p = write(tmp_path, """
server: {host: 127.0.0.1, port: 4000, master_key: "${LLMRELAY_MASTER_KEY:-}"}
storage: {url: "sqlite:///llmrelay.db"}
redis: {url: null}
providers:
  openai:    {kind: openai, api_key: "${OPENAI_API_KEY}", rpm: 500, tpm: 200000}
  anthropic: {kind: anthropic, api_key: "${ANTHROPIC_API_KEY}"}
  gemini:    {kind: gemini, api_key: "${GEMINI_API_KEY}"}
  local:     {kind: ollama, base_url: "http://127.0.0.1:11434"}
  shimmy:    {kind: shimmy, base_url: "http://127.0.0.1:11435"}
  sim:       {kind: openai, base_url: "http://127.0.0.1:9000/openai/v1", api_key: x}
models:
  fast:  [{provider: openai, model: gpt-4o-mini}, {provider: local, model: llama3.2}]
  smart: [{provider: anthropic, model: claude-sonnet-4-5}, {provider: openai, model: gpt-4o}]
routing: {retries: 2, timeout_s: 60, backoff: {base_s: 0.25, max_s: 8}, circuit: {failures: 5, window_s: 30, cooldown_s: 30}}
cache: {enabled: true, backend: memory, ttl_s: 3600, max_entries: 10000, semantic: {enabled: false, threshold: 0.95}}
dedup: {enabled: true}
budgets:
  - {scope: global, period: month, limit_usd: 2000, alert_at: [0.5, 0.8, 0.95]}
pricing: {overrides: {"sim/gpt-4o-mini": {input_per_mtok: 0.15, output_per_mtok: 0.60}}}
safety: {level: moderate, audit: true, rules: []}
alerts: {webhook_url: null}
""")
    s = load_settings(p, env={"OPENAI_API_KEY": "sk-test"})
    assert s.server.master_key is None
    assert s.providers["openai"].api_key == "sk-test"
    assert s.providers["anthropic"].api_key is None
    assert [d.provider for d in s.models["fast"]] == ["openai", "local"]
    assert s.budgets[0].limit_usd == 2000


def test_every_problem_has_its_line_and_a_suggestion(tmp_path: Path) -> None:
    p = write(tmp_path, "server:\n  prot: 4000\nproviders:\n  sim: {kind: opena}\ncache: {ttl_s: -1}\n")
    with pytest.raises(ConfigProblems) as info:
        load_settings(p, env={})
    problems = info.value.problems
    assert any(":2: server.prot: unknown key 'prot'; did you mean 'port'?" in x for x in problems)
    assert any(":4: providers.sim.kind" in x and "did you mean 'openai'" in x for x in problems)
    assert any(":5: cache.ttl_s" in x for x in problems)


def test_deployment_must_name_a_provider() -> None:
    with pytest.raises(ConfigProblems, match="no provider named 'simm'; did you mean 'sim'"):
        Settings.from_dict({"providers": {"sim": {"kind": "openai"}}, "models": {"m": [{"provider": "simm", "model": "x"}]}})


def test_bad_yaml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigProblems, match=r"llmrelay.yaml:\d+: not valid YAML"):
        load_settings(write(tmp_path, "a: 1\nb: [1, 2\n"))
    with pytest.raises(ConfigProblems, match="cannot read"):
        load_settings(tmp_path / "absent.yaml")


def test_redis_reply_timeout_is_configurable_and_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("redis")
    from llmrelay.relay import Relay
    from llmrelay.shared_state import client as shared_client

    asked: list[float] = []
    real = shared_client.redis_client  # (the redis_url fixture may have wrapped it: record what is asked)

    def recording(url: str, timeout_s: float = shared_client.SOCKET_TIMEOUT_S) -> object:
        asked.append(timeout_s)
        return real(url, timeout_s)

    monkeypatch.setattr(shared_client, "redis_client", recording)
    base = {"providers": {"p": {"kind": "fake"}}, "models": {"m": [{"provider": "p", "model": "x"}]},
            "storage": {"url": "sqlite://:memory:"}}
    for given in (None, 2.5):
        redis = {"url": "redis://127.0.0.1:1/0", **({"timeout_s": given} if given else {})}
        assert shared_client.shared_redis(Relay({**base, "redis": redis}).services) is not None
    assert asked == [0.5, 2.5]
    bad = tmp_path / "llmrelay.yaml"
    bad.write_text("redis: {url: 'redis://127.0.0.1:1/0', timeout_s: 0}\n")
    with pytest.raises(ConfigProblems, match="timeout_s"):
        load_settings(bad)
