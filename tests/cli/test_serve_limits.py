"""``llmrelay serve`` lifts the open-files soft limit to the hard one (a thousand concurrent streams
need more descriptors than the usual soft limit of 1,024)."""

from __future__ import annotations

import resource
import subprocess
import sys

import pytest

from llmrelay.cli.serve import _uvicorn_options
from llmrelay.config import Settings
from llmrelay.server.h1_protocol import H1Protocol


def test_the_soft_limit_is_raised_to_the_hard_one() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard <= 256:
        pytest.skip("the hard limit leaves nothing to raise")

    def lower() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))

    code = ("import resource; from llmrelay.cli.serve import raise_open_files_limit as r; "
            "before = resource.getrlimit(resource.RLIMIT_NOFILE)[0]; after = r(); "
            "print(before, after, resource.getrlimit(resource.RLIMIT_NOFILE)[0])")
    out = subprocess.run([sys.executable, "-c", code], preexec_fn=lower, capture_output=True, text=True,
                         check=True, timeout=60)
    before, after, now = (int(x) for x in out.stdout.split())
    assert before == 256
    assert after == now > 256
    if hard != resource.RLIM_INFINITY:
        assert now == hard


def test_the_listen_backlog_holds_a_burst_of_connections() -> None:
    assert _uvicorn_options(Settings(), "warning")["backlog"] >= 1024


def test_serve_runs_llmrelay_s_protocol_unless_switched_back_to_httptools() -> None:
    assert _uvicorn_options(Settings(), "warning")["http"] is H1Protocol
    switched = Settings.from_dict({"server": {"http_protocol": "httptools"}}, source="test")
    assert _uvicorn_options(switched, "warning")["http"] == "httptools"
