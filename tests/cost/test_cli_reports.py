"""Reports over a ledger the relay wrote, through the CLI: report, export, pricing show."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from llmrelay import Message, Relay
from llmrelay.cli import main
from llmrelay.context import RequestContext

from .conftest import relay_config


async def _afill(tmp_path: Path) -> tuple[Path, float]:
    cfg = relay_config(tmp_path)
    cfg["providers"]["cheap"] = {"kind": "fake"}
    cfg["models"]["m"].append({"provider": "cheap", "model": "echo"})
    cfg["pricing"]["overrides"]["cheap/echo"] = {"input_per_mtok": 100.0, "output_per_mtok": 100.0}
    path = tmp_path / "llmrelay.yaml"
    path.write_text(yaml.safe_dump(cfg))
    spent = 0.0
    async with Relay.from_file(path) as relay:
        for i in range(12):
            ctx = RequestContext(user=("ann", "bob")[i % 2])
            msgs = [Message.system("You are terse. " * 40), Message.user("same question" if i < 6 else f"q{i}")]
            await relay.chat(model="m", messages=msgs, ctx=ctx)
            spent += ctx.cost_usd
    return path, spent


def _fill(tmp_path: Path) -> tuple[Path, float]:
    return asyncio.run(_afill(tmp_path))


def test_report_json_groups_and_recommends(tmp_path: Path) -> None:
    path, spent = _fill(tmp_path)
    res = CliRunner().invoke(main, ["usage", "report", "--config", str(path), "--by", "user", "--format", "json"])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.output)
    by_user = {r["user_id"]: r for r in rep["rows"]}
    assert by_user["ann"]["requests"] == by_user["bob"]["requests"] == 6
    assert spent > 0 and rep["total"]["cost_usd"] == pytest.approx(spent, rel=1e-6)
    kinds = {r["kind"]: r for r in rep["recommendations"]}
    # Six identical prompts: a response cache would have answered five of them.
    assert kinds["response_cache"]["count"] == 6
    assert kinds["cheaper_model"]["to"] == "cheap/echo"
    assert kinds["cheaper_model"]["saving_usd"] > 0.8 * spent
    assert rep["forecast_month_usd"] >= rep["month_to_date_usd"] >= rep["total"]["cost_usd"] - 1e-9


def test_table_csv_and_exports(tmp_path: Path) -> None:
    path, _ = _fill(tmp_path)
    runner = CliRunner()
    table = runner.invoke(main, ["usage", "report", "--config", str(path), "--by", "model,day"])
    assert table.exit_code == 0 and "echo" in table.output and "total: 12 requests" in table.output
    csv_out = runner.invoke(main, ["usage", "report", "--config", str(path), "--format", "csv"])
    assert csv_out.output.splitlines()[0].startswith("model,requests")
    for fmt in ("csv", "json", "pdf"):
        out = tmp_path / f"usage.{fmt}"
        res = runner.invoke(main, ["usage", "export", "--config", str(path), "--format", fmt, "--out", str(out)])
        assert res.exit_code == 0, res.output
    assert len((tmp_path / "usage.csv").read_text().splitlines()) == 13
    assert len(json.loads((tmp_path / "usage.json").read_text())["rows"]) == 12
    assert (tmp_path / "usage.pdf").read_bytes().startswith(b"%PDF")
    bad = runner.invoke(main, ["usage", "report", "--config", str(path), "--since", "soon"])
    assert bad.exit_code == 1 and "--since" in bad.output


def test_pricing_show(tmp_path: Path) -> None:
    cfg = relay_config(tmp_path)
    cfg["providers"]["oa"] = {"kind": "openai", "api_key": "x"}
    cfg["models"]["g"] = [{"provider": "oa", "model": "gpt-4o-mini"}]
    cfg["pricing"]["currency"], cfg["pricing"]["exchange_rates"] = "EUR", {"EUR": 0.5}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    res = CliRunner().invoke(main, ["pricing", "show", "--config", str(path), "--json"])
    rows = {r["model"]: r for r in json.loads(res.output)}
    from genai_prices.data import providers

    raw = next(p for p in providers if p.id == "openai").find_model("gpt-4o-mini")
    assert rows["gpt-4o-mini"]["input"] == float(raw.prices.input_mtok) * 0.5  # type: ignore[union-attr]
    assert rows["echo"]["source"] == "config" and rows["echo"]["currency"] == "EUR"
    res = CliRunner().invoke(main, ["pricing", "show", "--config", str(path), "no-such-model-xyz"])
    assert "unpriced" in res.output
