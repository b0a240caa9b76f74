"""deploy/docker-compose.yml and deploy/k8s/: they parse, and their probe paths, scrape path and
ports are the ones the gateway serves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from llmrelay.config import ServerConfig, Settings
from llmrelay.relay import Relay
from llmrelay.server.app import create_app

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
PORT = ServerConfig().port


def served_paths(tmp_path: Path) -> set[str]:
    settings = Settings.from_dict({"storage": {"url": f"sqlite:///{tmp_path / 'x.db'}"}})
    gw: Any = create_app(Relay(settings))
    return set(gw._paths)


def k8s_docs() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for f in sorted((DEPLOY / "k8s").glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(f.read_text()) if d]
    return docs


def test_kubernetes_probes_and_scrape_match_the_server(tmp_path: Path) -> None:
    paths = served_paths(tmp_path)
    docs = k8s_docs()
    gateway = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "llmrelay")
    pod = gateway["spec"]["template"]
    container = pod["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"] == {"path": "/health/ready", "port": PORT}
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert {"/health/ready", "/health/live", "/metrics"} <= paths
    assert container["ports"][0]["containerPort"] == PORT
    assert container["args"][container["args"].index("--port") + 1] == str(PORT)
    notes = pod["metadata"]["annotations"]
    assert notes["prometheus.io/path"] in paths and int(notes["prometheus.io/port"]) == PORT
    monitor = next(d for d in docs if d["kind"] == "ServiceMonitor")
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"
    assert gateway["spec"]["replicas"] > 1
    # The embedded config is valid for this release (env placeholders filled in).
    config = next(d for d in docs if d["kind"] == "ConfigMap")["data"]["llmrelay.yaml"]
    raw = yaml.safe_load(config.replace("${DATABASE_URL}", "postgresql://u@db/x"))
    assert Settings.from_dict(raw).redis.url
    job = next(d for d in docs if d["kind"] == "Job")
    assert job["spec"]["template"]["spec"]["containers"][0]["command"][1:3] == ["db", "upgrade"]


def test_compose_runs_gateways_on_redis_and_postgres(tmp_path: Path) -> None:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"gateway", "redis", "postgres"} <= set(services)
    gw = services["gateway"]
    assert gw["command"][gw["command"].index("--port") + 1] == str(PORT)
    assert "/health/ready" in " ".join(gw["healthcheck"]["test"])
    assert gw["labels"]["prometheus.io/path"] in served_paths(tmp_path)
    assert gw["environment"]["DATABASE_URL"].startswith("postgresql://")
    assert gw["environment"]["REDIS_URL"].startswith("redis://")
