"""Every code block in docs/ is run or checked.

- ``python``: run in order, per page, in one fresh directory (``title="x.py"`` blocks are written
  as files there, importable by the blocks after them);
- ``bash``: run with ``bash -euo pipefail`` in that directory;
- ``yaml``: validated as an llmrelay config, and written to its ``title`` file when it has one
  (a title naming a LiteLLM file is translated with ``llmrelay import`` instead);
- ``title="needs keys"`` / ``title="runs a server"`` / ``title="needs a model"`` (files not shipped):
  syntax-checked only.

``127.0.0.1:4000`` in a block means the demo gateway; the test points it at its own one. Any other
fenced language is an error, so no example escapes the test.
"""

from __future__ import annotations

import ast
import contextlib
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from llmrelay.config import Settings, _expand_tree
from llmrelay.migrate import translate_litellm

DOCS = Path(__file__).resolve().parents[2] / "docs"
FENCE = re.compile(r"^```(\w+)([^\n]*)\n(.*?)^```\s*$", re.M | re.S)
RUN = {"python", "bash", "yaml"}
SHOWN_ONLY = {"text", "json", "console"}
CHECK_ONLY = ("needs keys", "runs a server", "needs a model")


@dataclass(frozen=True)
class Block:
    lang: str
    title: str
    code: str
    line: int


def _blocks(page: Path) -> list[Block]:
    text = page.read_text(encoding="utf-8")
    out = []
    for m in FENCE.finditer(text):
        title = re.search(r'title="([^"]*)"', m.group(2))
        out.append(Block(m.group(1), title.group(1) if title else "", m.group(3), text[: m.start()].count("\n") + 1))
    return out


PAGES = sorted(p for p in DOCS.rglob("*.md") if "reference" not in p.relative_to(DOCS).parts)


def test_docs_have_examples_in_known_languages() -> None:
    seen = 0
    for page in PAGES:
        for b in _blocks(page):
            assert b.lang in RUN | SHOWN_ONLY, f"{page}:{b.line}: unknown block language {b.lang!r}"
            seen += b.lang in RUN
    assert seen >= 30


def _check_only(b: Block, where: str) -> None:
    if b.lang == "python":
        ast.parse(b.code, filename=where)
    elif b.lang == "bash":
        subprocess.run(["bash", "-n"], input=b.code, text=True, check=True)


def _yaml(b: Block, cwd: Path, where: str) -> None:
    data = yaml.safe_load(b.code)
    if "litellm" in b.title:
        assert translate_litellm(data).config["models"], where
    else:
        Settings.from_dict(_expand_tree(data, {}), source=where)
    if b.title.endswith((".yaml", ".yml")):
        (cwd / b.title).write_text(b.code, encoding="utf-8")


def _python(b: Block, cwd: Path, where: str) -> None:
    if b.title.endswith(".py"):
        ast.parse(b.code, filename=where)
        (cwd / b.title).write_text(b.code, encoding="utf-8")
        return
    code = compile(b.code, where, "exec")
    with contextlib.chdir(cwd):
        exec(code, {"__name__": "__main__"})


def _bash(b: Block, cwd: Path, env: dict[str, str], where: str) -> None:
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", b.code], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"{where}\n{proc.stdout}\n{proc.stderr}"


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(DOCS)) for p in PAGES])
def test_page_examples(page: Path, demo_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    host = demo_url.removeprefix("http://")
    env = {**os.environ, "LLMRELAY_CONFIG": "", "OPENAI_API_KEY": "unused"}
    monkeypatch.setenv("LLMRELAY_CONFIG", "")
    monkeypatch.syspath_prepend(str(tmp_path))
    for b in _blocks(page):
        where = f"{page.relative_to(DOCS)}:{b.line}"
        code = b.code.replace("127.0.0.1:4000", host)
        b = Block(b.lang, b.title, code, b.line)
        if b.title in CHECK_ONLY:
            _check_only(b, where)
        elif b.lang == "yaml":
            _yaml(b, tmp_path, where)
        elif b.lang == "python":
            _python(b, tmp_path, where)
        elif b.lang == "bash":
            _bash(b, tmp_path, env, where)
    # Modules written by this page must not leak into the next one.
    for name in [m for m, mod in sys.modules.items() if str(getattr(mod, "__file__", "")).startswith(str(tmp_path))]:
        del sys.modules[name]


def test_mkdocs_build_strict(tmp_path: Path) -> None:
    """The site builds with no warning: broken links, missing pages and bad nav fail."""
    root = DOCS.parent
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(tmp_path / "site")],
                          cwd=root, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for page in ("reference/config/index.html", "reference/cli/index.html", "reference/http-api/index.html",
                 "migration/litellm/index.html", "tutorials/layer/index.html"):
        assert (tmp_path / "site" / page).is_file()
    assert "extra_layers" in (tmp_path / "site/reference/config/index.html").read_text()
    assert "litellm-config" in (tmp_path / "site/reference/cli/index.html").read_text()
