"""Each file in examples/ runs against a real demo gateway and exits 0."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
FILES = sorted(p for p in EXAMPLES.iterdir() if p.suffix in (".py", ".sh"))


def test_examples_exist() -> None:
    names = {p.name for p in FILES}
    assert {"openai_sdk.py", "anthropic_sdk.py", "langchain_chat.py", "curl.sh", "library.py",
            "streaming.py"} <= names


@pytest.mark.parametrize("example", FILES, ids=[p.name for p in FILES])
def test_example_runs(example: Path, demo_url: str, tmp_path: Path) -> None:
    cmd = ["bash", str(example)] if example.suffix == ".sh" else [sys.executable, str(example)]
    env = {**os.environ, "LLMRELAY_URL": demo_url, "OPENAI_API_KEY": "unused", "LLMRELAY_CONFIG": ""}
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip()
