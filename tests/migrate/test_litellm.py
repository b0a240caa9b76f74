"""LiteLLM config translation: real configs from LiteLLM's docs, and each mapping rule."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from llmrelay.cli import main
from llmrelay.config import Settings, load_settings
from llmrelay.migrate import render_yaml, translate_litellm
from llmrelay.migrate._litellm_models import env_ref, resolve_kind
from llmrelay.migrate.litellm import FALLBACK_WEIGHT

FIXTURES = sorted((Path(__file__).parent / "fixtures").glob("*.yaml"))


def _entries(data: dict[str, Any]) -> list[dict[str, Any]]:
    return list(data.get("model_list") or [])


@pytest.mark.parametrize("fixture", FIXTURES, ids=[f.stem for f in FIXTURES])
def test_real_configs_translate_into_configs_that_check(fixture: Path, tmp_path: Path) -> None:
    out = tmp_path / "llmrelay.yaml"
    runner = CliRunner()
    result = runner.invoke(main, ["import", "litellm-config", str(fixture), "--out", str(out)])
    assert result.exit_code == 0, result.output
    check = runner.invoke(main, ["config", "check", str(out)])
    assert check.exit_code == 0, check.output
    settings = load_settings(out, env={})
    source = yaml.safe_load(fixture.read_text())
    # Every model group whose deployments have an adapter is served; the others are listed.
    listed = result.stderr
    for entry in _entries(source):
        group = str(entry["model_name"])
        if group in settings.models:
            continue
        assert f"({group})" in listed or "'*'" in listed
    # What stderr lists is also at the top of the file, as comments.
    text = out.read_text()
    header = text.split("\n\n", 1)[0]
    for line in listed.splitlines():
        if line.startswith(("not translated: ", "approximated: ")):
            assert line.split(": ", 1)[1] in header


def test_quick_start_config_from_litellm_docs() -> None:
    data = yaml.safe_load((Path(__file__).parent / "fixtures/litellm_configs_quick_start.yaml").read_text())
    t = translate_litellm(data)
    gpt4o = t.config["models"]["gpt-4o"]
    assert [d["model"] for d in gpt4o] == ["gpt-4o-eu", "gpt-4o-ca"]
    providers = [t.config["providers"][d["provider"]] for d in gpt4o]
    assert [p["api_key"] for p in providers] == ["${AZURE_API_KEY_EU}", "${AZURE_API_KEY_CA}"]
    assert {p["kind"] for p in providers} == {"azure"}
    assert t.config["server"]["master_key"] == "sk-1234"
    untranslated = "\n".join(t.notes.untranslated)
    for what in ("bedrock/anthropic.claude-instant-v1", "wildcard", "langfuse", "drop_params"):
        assert what in untranslated
    assert "bedrock-claude-v1" not in t.config["models"]


def test_load_balancing_config_keeps_rates_fallbacks_and_aliases() -> None:
    data = yaml.safe_load((Path(__file__).parent / "fixtures/litellm_configs_load_balancing.yaml").read_text())
    t = translate_litellm(data)
    models, routing = t.config["models"], t.config["routing"]
    zephyr = models["zephyr-beta"]
    assert [d.get("rpm") for d in zephyr[:3]] == [60, 600, 60000]
    assert zephyr[-1]["model"] == "gpt-4o" and zephyr[-1]["weight"] == FALLBACK_WEIGHT
    assert models["gpt-4"] == models["gpt-4o"]
    # router_settings wins over litellm_settings (2 retries, not 3; timeout 30, not 10).
    assert routing["retries"] == 2 and routing["timeout_s"] == 30.0
    assert routing["strategy"] == "weighted"
    assert routing["context_window_fallbacks"] == {"zephyr-beta": "gpt-3.5-turbo-16k", "gpt-4o": "gpt-3.5-turbo-16k"}
    assert routing["circuit"]["failures"] == 4
    assert t.config["redis"]["url"].endswith(":1992/0")


def test_env_references_and_kinds() -> None:
    assert env_ref("os.environ/AZURE_API_KEY") == "${AZURE_API_KEY}"
    assert env_ref("sk-plain") == "sk-plain"
    assert resolve_kind("anthropic/claude-3-5-sonnet") == ("anthropic", "claude-3-5-sonnet")
    assert resolve_kind("together_ai/meta-llama/Llama-3-8b") == ("together", "meta-llama/Llama-3-8b")
    assert resolve_kind("ollama_chat/llama3") == ("ollama", "llama3")
    assert resolve_kind("claude-3-haiku") == ("anthropic", "claude-3-haiku")
    assert resolve_kind("gpt-4o-mini") == ("openai", "gpt-4o-mini")
    assert resolve_kind("bedrock/x")[0] is None
    assert resolve_kind("mistralai/mistral-7b-instruct")[0] is None


def _one(model: str, **params: Any) -> dict[str, Any]:
    return {"model_name": model.split("/")[-1], "litellm_params": {"model": model, **params}}


def test_same_account_shares_one_provider_and_other_params_are_reported() -> None:
    t = translate_litellm({"model_list": [
        _one("openai/gpt-4o", api_key="os.environ/OPENAI_API_KEY", temperature=0.2),
        _one("openai/gpt-4o-mini", api_key="os.environ/OPENAI_API_KEY", organization="org-1"),
    ]})
    assert len(t.config["providers"]) == 2  # the organization header makes a second identity
    assert t.config["providers"]["openai-2"]["headers"] == {"OpenAI-Organization": "org-1"}
    assert any("temperature" in n for n in t.notes.untranslated)


def test_cache_budget_callbacks_database_and_guardrails() -> None:
    t = translate_litellm({
        "model_list": [_one("openai/gpt-4o-mini", input_cost_per_token=1.5e-7, output_cost_per_token=6e-7)],
        "litellm_settings": {"cache": True, "cache_params": {"type": "redis", "host": "os.environ/REDIS_HOST",
                                                            "port": 6380, "ttl": 600},
                             "max_budget": 100, "budget_duration": "30d",
                             "success_callback": ["prometheus", "otel", "helicone"]},
        "general_settings": {"master_key": "os.environ/LITELLM_MASTER_KEY",
                             "database_url": "os.environ/DATABASE_URL", "store_model_in_db": True},
        "guardrails": [{"guardrail_name": "pii", "litellm_params": {"guardrail": "presidio", "mode": "pre_call"}},
                       {"guardrail_name": "x", "litellm_params": {"guardrail": "aporia", "mode": "post_call"}}],
        "general": 1,
    })
    c = t.config
    assert c["cache"] == {"enabled": True, "backend": "redis", "ttl_s": 600.0}
    assert c["redis"]["url"] == "redis://${REDIS_HOST}:6380/0"
    assert c["budgets"] == [{"scope": "global", "period": "month", "limit_usd": 100.0}]
    assert c["tracing"]["enabled"] is True
    assert c["server"]["master_key"] == "${LITELLM_MASTER_KEY}"
    assert c["storage"]["url"] == "${DATABASE_URL:-sqlite:///llmrelay.db}"
    assert c["safety"]["actions"] == {"pii": "redact"}
    assert c["pricing"]["overrides"]["openai/gpt-4o-mini"] == {"input_per_mtok": 0.15, "output_per_mtok": 0.6}
    skipped = "\n".join(t.notes.untranslated)
    for what in ("helicone", "store_model_in_db", "aporia", "general:"):
        assert what in skipped
    Settings.from_dict({**c, "storage": {"url": "sqlite:///x.db"}, "server": {"master_key": "k"}})


@pytest.mark.parametrize(("duration", "period"), [("1d", "day"), ("24h", "day"), ("7d", "week"),
                                                  ("30d", "month"), ("1mo", "month"), (None, "total")])
def test_budget_durations(duration: str | None, period: str) -> None:
    t = translate_litellm({"litellm_settings": {"max_budget": 5, "budget_duration": duration}})
    assert t.config["budgets"][0]["period"] == period
    assert not t.notes.approximated


def test_context_window_fallbacks_keep_the_first_group_and_report_the_rest() -> None:
    groups = [_one(f"openai/{m}") for m in ("a", "b", "c")]
    t = translate_litellm({"model_list": groups, "router_settings": {
        "routing_strategy": "latency-based-routing", "context_window_fallbacks": [{"a": ["b", "c"]}],
        "default_fallbacks": ["c"], "enable_pre_call_checks": True}})
    assert t.config["routing"]["context_window_fallbacks"] == {"a": "b"}
    assert t.config["routing"]["strategy"] == "latency"
    assert [d["model"] for d in t.config["models"]["a"]] == ["a", "c"]
    assert [d["model"] for d in t.config["models"]["c"]] == ["c"]
    skipped = "\n".join(t.notes.untranslated)
    assert "['c']" in skipped and "enable_pre_call_checks" in skipped


def test_render_yaml_puts_notes_on_top_and_round_trips() -> None:
    t = translate_litellm({"model_list": [_one("bedrock/x"), _one("openai/gpt-4o")]})
    text = render_yaml(t, "c.yaml")
    assert text.startswith("# llmrelay config translated from the LiteLLM config c.yaml")
    assert "# NOT TRANSLATED" in text and "bedrock/x" in text.split("\n\n")[0]
    assert yaml.safe_load(text) == t.config


def test_cli_to_stdout_and_bad_input(tmp_path: Path) -> None:
    src = tmp_path / "c.yaml"
    src.write_text("model_list:\n  - model_name: m\n    litellm_params: {model: openai/gpt-4o-mini}\n")
    result = CliRunner().invoke(main, ["import", "litellm-config", str(src)])
    assert result.exit_code == 0
    assert yaml.safe_load(result.stdout)["models"]["m"][0]["model"] == "gpt-4o-mini"
    src.write_text("- just a list\n")
    bad = CliRunner().invoke(main, ["import", "litellm-config", str(src)])
    assert bad.exit_code == 1 and "mapping" in bad.stderr
    missing = CliRunner().invoke(main, ["import", "litellm-config", str(tmp_path / "nope.yaml")])
    assert missing.exit_code == 1 and "cannot read" in missing.stderr
