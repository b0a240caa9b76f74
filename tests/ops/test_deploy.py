"""deploy/: the Grafana dashboard and the Prometheus alert rules parse, and every llmrelay_* metric
they name exists in llmrelay.metrics (histograms with their _bucket/_sum/_count series)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from llmrelay.metrics import Metrics

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
_NAME = re.compile(r"\bllmrelay_[a-z0-9_]+")


def exposed_names() -> set[str]:
    names: set[str] = set()
    for family in Metrics().registry.collect():
        base = family.name
        if family.type == "counter":
            names.add(base + "_total")
        elif family.type == "histogram":
            names.update(base + s for s in ("_bucket", "_sum", "_count"))
        else:
            names.add(base)
    return names


def _alert_exprs() -> list[str]:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "llmrelay-alerts.yaml").read_text())
    return [r["expr"] for g in rules["groups"] for r in g["rules"]]


def _grafana_exprs() -> list[str]:
    dash = json.loads((DEPLOY / "grafana" / "llmrelay-dashboard.json").read_text())
    return [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]


def test_alert_rules_parse_and_name_real_metrics() -> None:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "llmrelay-alerts.yaml").read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"]}
    # The four: error rate, budget use, circuit open, latency.
    assert {"LLMRelayHighErrorRate", "LLMRelayBudgetNearlySpent", "LLMRelayCircuitOpen", "LLMRelayHighLatency"} <= alerts
    for g in rules["groups"]:
        for r in g["rules"]:
            assert r["labels"]["severity"] and r["annotations"]["summary"]
    _check(_alert_exprs())


def test_grafana_dashboard_parses_and_names_real_metrics() -> None:
    dash = json.loads((DEPLOY / "grafana" / "llmrelay-dashboard.json").read_text())
    assert dash["uid"] == "llmrelay" and len(dash["panels"]) >= 10
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    _check(_grafana_exprs())


def _check(exprs: list[str]) -> None:
    known = exposed_names()
    used = {n for e in exprs for n in _NAME.findall(e)}
    assert used, "no llmrelay metric referenced"
    assert used - known == set(), f"unknown metrics: {sorted(used - known)}"
    # Histograms are queried through their series, never by the bare family name.
    bare = {n for n in used if n + "_bucket" in known}
    assert bare == set()
