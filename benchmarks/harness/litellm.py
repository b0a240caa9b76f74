"""LiteLLM's proxy as a comparison target, run from its own virtualenv:

    python -m venv /tmp/litellm-venv && /tmp/litellm-venv/bin/pip install 'litellm[proxy]'
    python benchmarks/overhead.py --litellm /tmp/litellm-venv/bin/litellm

It is configured with the same fake upstream as an OpenAI-compatible model, one worker, no
database, no callbacks, and gets the same core as llmrelay.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import yaml

from .configs import MODEL, GatewayConfig

LITELLM_KEY = "sk-litellm-bench-9f8e7d6c5b4a3210"


def prepare_litellm(upstream_port: int, workdir: Path) -> GatewayConfig:
    path = workdir / "litellm.yaml"
    path.write_text(yaml.safe_dump({
        "model_list": [{"model_name": MODEL, "litellm_params": {
            "model": "openai/gpt-4o-mini", "api_base": f"http://127.0.0.1:{upstream_port}/v1", "api_key": "x"}}],
        "litellm_settings": {"drop_params": True, "telemetry": False},
        # It refuses to start without a master key; with no database, the master key is the only key.
        "general_settings": {"master_key": LITELLM_KEY},
    }))
    return GatewayConfig("litellm", path, LITELLM_KEY)


def litellm_argv(executable: str) -> Callable[[GatewayConfig, int], list[str]]:
    def argv(cfg: GatewayConfig, port: int) -> list[str]:
        return [executable, "--config", str(cfg.path), "--host", "127.0.0.1", "--port", str(port),
                "--num_workers", "1"]
    return argv
