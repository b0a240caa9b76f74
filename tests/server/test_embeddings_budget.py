"""POST /v1/embeddings under budgets, like chat: the input's cost is reserved before the call,
a key over its budget gets the same 429 ``budget_exceeded``, and the priced cost is settled on the
budget counters and written to the usage ledger."""

from __future__ import annotations

import time
from pathlib import Path

import openai
import pytest

from ._admin import PRICES, admin_gateway, chat, db_rows, get, post
from .conftest import MASTER

INPUT_PRICE = PRICES["fake/echo"]["input_per_mtok"] / 1_000_000  # USD per input token


def _ledger(db: Path, sql: str, want: int) -> list:
    """Rows are written in batches off the request path: wait (bounded) for them."""
    deadline = time.monotonic() + 30  # generous: returns as soon as the rows are there
    while True:
        rows = db_rows(db, sql)
        if len(rows) >= want or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


def test_embeddings_are_budgeted_charged_and_recorded(tmp_path: Path) -> None:
    db = tmp_path / "gw.db"
    with admin_gateway(db) as gw:
        key = post(gw, "/admin/keys", {"name": "emb", "budget_usd": 1, "budget_period": "total"}).json()
        client = openai.OpenAI(base_url=gw.url + "/v1", api_key=key["key"], max_retries=0, timeout=10)
        raw = client.embeddings.with_raw_response.create(model="m", input=["one two", "three four"])
        emb = raw.parse()
        expected = emb.usage.prompt_tokens * INPUT_PRICE
        assert emb.usage.prompt_tokens == 4 and len(emb.data) == 2
        assert float(raw.headers["x-llmrelay-cost-usd"]) == pytest.approx(expected)
        assert getattr(emb.usage, "cost", None) == pytest.approx(expected)

        # The budget counter holds what was charged, nothing left reserved.
        own = next(r for r in get(gw, "/admin/budgets").json()["data"] if r["scope"] == "key" and r["id"] == key["id"])
        assert own["spent_usd"] == pytest.approx(expected, abs=1e-6)
        assert own["reserved_usd"] == pytest.approx(0, abs=1e-5)

        # An input whose cost cannot fit what is left: the same refusal as chat's.
        with pytest.raises(openai.RateLimitError) as refused:
            client.embeddings.create(model="m", input=" ".join(["word"] * 200))
        assert refused.value.code == "budget_exceeded"
        assert refused.value.response.headers["x-should-retry"] == "false"
        r = chat(gw, key=key["key"])
        assert r.status_code == 429 and r.json()["error"]["code"] == "budget_exceeded"
        after = next(r for r in get(gw, "/admin/budgets").json()["data"] if r["scope"] == "key" and r["id"] == key["id"])
        assert after["spent_usd"] == pytest.approx(expected, abs=1e-6)

    rows = _ledger(db, f"SELECT * FROM usage_ledger WHERE key_id = '{key['id']}' ORDER BY ts", 3)
    assert [r["status"] for r in rows] == ["ok", "refused", "refused"]
    ok = rows[0]
    assert (ok["model_group"], ok["provider"], ok["model"]) == ("m", "fake", "echo")
    assert ok["input_tokens"] == 4 and ok["output_tokens"] == 0
    assert ok["cost_usd"] == pytest.approx(expected)
    assert rows[1]["error_code"] == "budget_exceeded" and rows[1]["cost_usd"] == 0


def test_global_budget_counts_embedding_spend(tmp_path: Path) -> None:
    """A config budget (here the global one) is charged by embeddings as by chat."""
    db = tmp_path / "gw.db"
    with admin_gateway(db) as gw:
        client = openai.OpenAI(base_url=gw.url + "/v1", api_key=MASTER, max_retries=0, timeout=10)
        costs = [client.embeddings.with_raw_response.create(model="m", input=text).headers["x-llmrelay-cost-usd"]
                 for text in ("a b c", "d e")]
        glob = next(r for r in get(gw, "/admin/budgets").json()["data"] if r["scope"] == "global")
    assert glob["spent_usd"] == pytest.approx(sum(float(c) for c in costs), abs=1e-6)
    assert glob["spent_usd"] == pytest.approx(5 * INPUT_PRICE, abs=1e-6)

