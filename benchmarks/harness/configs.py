"""The three gateway configurations the benchmark compares, written as YAML files.

- ``passthrough``: no master key (any key accepted), safety off, cache and dedup off, no budgets,
  no stream recordings, the ledger in an in-memory SQLite database (the gateway has no switch to
  turn the ledger off).
- ``default``: a master key and a virtual key (with rpm/tpm limits), cost tracking with a price for
  the model, the usage ledger in a SQLite file, moderate safety; dedup as shipped (deterministic
  requests only), stream recordings for resume as shipped.
- ``all``: the default plus the exact cache, a global budget and the key's budget, and the audit log.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

CONFIGS = ("passthrough", "default", "all")
MASTER_KEY = "sk-bench-master-0123456789"
MODEL = "bench"


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    name: str
    path: Path
    api_key: str  # what the load generator sends as Bearer


def settings_for(name: str, upstream_port: int, workdir: Path) -> dict[str, Any]:
    base: dict[str, Any] = {
        "providers": {"up": {"kind": "openai", "base_url": f"http://127.0.0.1:{upstream_port}/v1", "api_key": "x",
                             "max_connections": 512}},
        "models": {MODEL: [{"provider": "up", "model": "gpt-4o-mini"}]},
        "pricing": {"overrides": {"up/gpt-4o-mini": {"input_per_mtok": 0.15, "output_per_mtok": 0.60}}},
        "logging": {"level": "warning"},
    }
    if name == "passthrough":
        return {**base, "server": {"stream_resume_ttl_s": 0}, "storage": {"url": "sqlite://:memory:"},
                "safety": {"level": "off", "audit": False}, "cache": {"enabled": False}, "dedup": {"enabled": False}}
    db = workdir / f"{name}.db"
    out = {**base, "server": {"master_key": MASTER_KEY}, "storage": {"url": f"sqlite:///{db}"},
           "safety": {"level": "moderate", "audit": name == "all"}}
    if name == "all":
        out["cache"] = {"enabled": True}
        out["budgets"] = [{"scope": "global", "period": "month", "limit_usd": 1_000_000}]
    return out


def prepare(name: str, upstream_port: int, workdir: Path) -> GatewayConfig:
    """Write the config file (and create the virtual key where one is needed)."""
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(settings_for(name, upstream_port, workdir)))
    if name == "passthrough":
        return GatewayConfig(name, path, "sk-anything")
    args = ["keys", "create", "--config", str(path), "--name", f"bench-{name}", "--rpm", "10000000",
            "--tpm", "1000000000", "--json"]
    if name == "all":
        args += ["--budget-usd", "1000000", "--budget-period", "month"]
    out = subprocess.run([sys.executable, "-c", "from llmrelay.cli import main; main()", *args],
                         check=True, capture_output=True, text=True)
    return GatewayConfig(name, path, json.loads(out.stdout)["key"])


def gateway_argv(cfg: GatewayConfig, port: int, server: str | None = None) -> list[str]:
    """``llmrelay serve`` for ``cfg``; ``server`` picks the HTTP server (``--server``; None = the
    gateway's default, which a source tree older than the option also understands)."""
    argv = [sys.executable, "-c", "from llmrelay.cli import main; main()", "serve", "--config", str(cfg.path),
            "--port", str(port), "--log-level", "warning"]
    return [*argv, "--server", server] if server else argv
