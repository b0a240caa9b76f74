"""The layering rules of DESIGN.md, checked by reading the source (no imports executed).

- ``types.py`` and ``errors.py`` import nothing of the package;
- nothing in the library imports an edge (``server/``, ``cli/``);
- a provider imports nothing from ``layers/``, ``server/``, ``cost/`` or ``safety/``;
- stores know nothing of layers;
- the simulator shares only the wire codecs;
- nothing outside ``providers/`` names a specific provider in code (STYLE.md), except the places
  whose job is to speak a named protocol or config format, listed below with the reason.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "src" / "llmrelay"


def modules() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG).as_posix()
        yield rel, ast.parse(path.read_text(encoding="utf-8"))


def imported(rel: str, tree: ast.Module) -> set[str]:
    """Absolute ``llmrelay.x.y`` names a module imports (relative imports resolved)."""
    package = ["llmrelay", *rel.split("/")[:-1]]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("llmrelay")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            if name.startswith("llmrelay"):
                out.add(name)
                # ``from . import x`` / ``from .pkg import mod`` may import submodules.
                out |= {f"{name}.{a.name}" for a in node.names}
    return out


def under(name: str, *prefixes: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


ALL = list(modules())


@pytest.mark.parametrize("rel", ["types.py", "errors.py"])
def test_foundation_modules_import_nothing_of_the_package(rel: str) -> None:
    tree = dict(ALL)[rel]
    assert imported(rel, tree) == set()


def test_library_never_imports_an_edge() -> None:
    edges = ("llmrelay.server", "llmrelay.cli")
    bad = [
        (rel, name)
        for rel, tree in ALL
        if not rel.startswith(("server/", "cli/"))
        for name in imported(rel, tree)
        if under(name, *edges)
    ]
    assert bad == []


def test_providers_know_nothing_of_the_layers_above() -> None:
    above = ("llmrelay.layers", "llmrelay.server", "llmrelay.cost", "llmrelay.safety", "llmrelay.cli")
    bad = [
        (rel, name)
        for rel, tree in ALL
        if rel.startswith("providers/")
        for name in imported(rel, tree)
        if under(name, *above)
    ]
    assert bad == []


def test_stores_know_nothing_of_layers() -> None:
    bad = [
        (rel, name)
        for rel, tree in ALL
        if rel.startswith("stores/")
        for name in imported(rel, tree)
        if under(name, "llmrelay.layers", "llmrelay.server")
    ]
    assert bad == []


def test_simulator_shares_only_the_wire_codecs() -> None:
    bad = [
        (rel, name)
        for rel, tree in ALL
        if rel.startswith("simulator/")
        for name in imported(rel, tree)
        if not under(name, "llmrelay.simulator", "llmrelay.streaming")
    ]
    assert bad == []


PROVIDER_NAMES = {
    "openai", "anthropic", "gemini", "ollama", "groq", "mistral", "deepseek", "openrouter",
    "azure", "shimmy", "vllm", "together", "lmstudio", "llamacpp",
}

# Places whose job is to speak a named protocol or format, so naming it is their purpose.
NAMING_ALLOWED = {
    "server/openai_api.py": "the OpenAI edge",
    "server/openai_codec.py": "the OpenAI edge",
    "server/anthropic_api.py": "the Anthropic edge",
    "server/anthropic_codec.py": "the Anthropic edge",
    "server/resume.py": "resumes streams of the OpenAI edge",
    "server/demo.py": "configures one demo provider of each kind",
    "migrate/": "translates LiteLLM's provider names",
    "safety/detectors/": "detection patterns mention vendors' key formats and names",
    "safety/moderation.py": "speaks the OpenAI moderation API",
    "cost/tokens.py": "token ratios by model family (model names such as gemini-2.5, not providers)",
}


def string_constants(tree: ast.Module) -> Iterator[ast.Constant]:
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            yield node


def test_no_provider_is_named_outside_providers() -> None:
    bad = []
    for rel, tree in ALL:
        if rel.startswith(("providers/", "simulator/")) or any(rel.startswith(a) for a in NAMING_ALLOWED):
            continue
        for const in string_constants(tree):
            word = str(const.value).lower().split("/")[0].split(":")[0]
            if word in PROVIDER_NAMES:
                bad.append(f"{rel}:{const.lineno}: {const.value!r}")
    assert bad == [], "move provider-specific knowledge into providers/ (a preset option):\n" + "\n".join(bad)
