"""The neutral answer engine, schema examples, fault specs and the wing's import rule."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from llmrelay.cli import main
from llmrelay.simulator.answer import Options, Prompt, ToolSpec, compose, count_tokens, split_pieces
from llmrelay.simulator.faults import FaultSpecError, parse_fault, split_model
from llmrelay.simulator.schema_args import example_for

SIM = Path(__file__).resolve().parents[2] / "src" / "llmrelay" / "simulator"


def test_same_prompt_same_answer_different_prompt_different_filler() -> None:
    p1 = Prompt(texts=("alpha beta",), last_user="alpha beta", n_messages=1)
    p2 = Prompt(texts=("gamma delta",), last_user="gamma delta", n_messages=1)
    opts = Options(words=40)
    assert compose(p1, opts) == compose(p1, opts)
    assert compose(p1, opts).text.split()[8:] != compose(p2, opts).text.split()[8:]


def test_usage_is_the_documented_count() -> None:
    p = Prompt(texts=("You are terse.", "Hi, bot!"), last_user="Hi, bot!", n_messages=2, images=1)
    a = compose(p, Options())
    assert a.input_tokens == count_tokens("You are terse.") + count_tokens("Hi, bot!") + 2 * 3 + 85
    assert a.output_tokens == count_tokens(a.text) and a.finish == "stop"


def test_reasoning_counts_inside_output() -> None:
    a = compose(Prompt(texts=("q",), last_user="q", n_messages=1, reasoning=True), Options())
    assert a.reasoning and a.reasoning_tokens == count_tokens(a.reasoning)
    assert a.output_tokens == count_tokens(a.text) + a.reasoning_tokens


def test_forced_tool_and_parallel_calls() -> None:
    tools = (ToolSpec("a", {"type": "object", "properties": {"x": {"type": "boolean"}}}), ToolSpec("b"))
    p = Prompt(texts=("q",), last_user="q", n_messages=1, tools=tools, tool_choice="b")
    calls = compose(p, Options(tool_calls=3)).calls
    assert [c.name for c in calls] == ["b", "b", "b"] and len({c.id for c in calls}) == 3
    auto = compose(Prompt(texts=("q",), last_user="q", n_messages=1, tools=tools), Options(tool_calls=2)).calls
    assert [c.name for c in auto] == ["a", "b"] and auto[0].arguments == {"x": True}


@given(st.lists(st.text(alphabet="abc xyz", min_size=1, max_size=8), min_size=1, max_size=30).map(" ".join),
       st.one_of(st.none(), st.integers(1, 50)))
def test_pieces_rebuild_the_text(text: str, chunks: int | None) -> None:
    pieces = split_pieces(text, chunks)
    assert "".join(pieces) == text
    if chunks is not None:
        assert len(pieces) == min(chunks, len(text))


def test_schema_examples() -> None:
    schema = {
        "type": "object",
        "properties": {
            "when": {"type": "string", "format": "date"},
            "tags": {"type": "array", "items": {"$ref": "#/$defs/Tag"}, "minItems": 2},
            "maybe": {"anyOf": [{"type": "null"}, {"type": "integer", "minimum": 5}]},
            "kind": {"const": "fixed"},
            "code": {"type": "string", "maxLength": 3},
        },
        "$defs": {"Tag": {"type": "object", "properties": {"name": {"type": "string"}}}},
    }
    assert example_for(schema) == {"when": "2024-01-01", "tags": [{"name": "example name"}] * 2, "maybe": 5,
                                   "kind": "fixed", "code": "exa"}
    assert example_for({"type": "OBJECT", "properties": {"n": {"type": "NUMBER"}}}) == {"n": 1.5}


def test_fault_specs() -> None:
    f = parse_fault("drop,after=3,chunk_delay=5")
    assert f is not None and (f.kind, f.after, f.chunk_delay_ms) == ("drop", 3, 5.0)
    assert parse_fault("none") is None and parse_fault("") is None
    assert split_model("m") == ("m", {})
    for bad in ("explode", "200", "503,rate=2", "stall,seconds=x"):
        with pytest.raises(FaultSpecError):
            parse_fault(bad)


def test_simulator_imports_only_the_wire_codecs_from_llmrelay() -> None:
    for path in SIM.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level >= 2:
                assert node.module == "streaming", f"{path.name} imports ..{node.module}"
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                assert not node.module.startswith("llmrelay") or node.module == "llmrelay.streaming", path.name


def test_cli_command_is_discovered() -> None:
    result = CliRunner().invoke(main, ["simulate", "--help"])
    assert result.exit_code == 0 and "--port" in result.output and "/anthropic/v1" in result.output


def test_cli_serves_until_stopped() -> None:
    import socket
    import subprocess
    import sys
    import time

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-c", "from llmrelay.cli import main; main()", "simulate", "--port", str(port)],
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                assert httpx.get(f"http://127.0.0.1:{port}/_sim/health").json() == {"ok": True}
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.05)
        models = httpx.get(f"http://127.0.0.1:{port}/ollama/api/tags").json()["models"]
        assert models and all("digest" in m for m in models)
    finally:
        proc.terminate()
        proc.wait(10)
