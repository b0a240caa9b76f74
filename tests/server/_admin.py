"""Shared pieces of the admin API tests: a secured gateway over a SQLite file with priced fake
deployments, budgets and a deployment that fails, and small request helpers."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from llmrelay.errors import ProviderUnavailableError

from .conftest import MASTER, Running, base_config, serve

# $0.1 per input token and $0.2 per output token: costs large enough to read, exact in micro-dollars.
PRICES = {"fake/echo": {"input_per_mtok": 100_000, "output_per_mtok": 200_000}}
ADMIN = {"authorization": f"Bearer {MASTER}"}


def admin_config(db: Path, **extra: Any) -> dict[str, Any]:
    cfg = base_config(None, server={"master_key": MASTER},
                      storage={"url": f"sqlite:///{db}", "ledger_flush_s": 0.05},
                      pricing={"overrides": PRICES},
                      budgets=[{"scope": "global", "period": "month", "limit_usd": 100},
                               {"scope": "user", "id": "*", "period": "day", "limit_usd": 50}],
                      routing={"retries": 0, "circuit": {"failures": 2, "window_s": 30, "cooldown_s": 30}},
                      **extra)
    # "flaky" tries a deployment that fails (scripted per test) before the healthy one.
    cfg["providers"]["broken"] = {"kind": "fake"}
    cfg["models"]["flaky"] = [{"provider": "broken", "model": "echo"}, {"provider": "fake", "model": "echo"}]
    return cfg


@contextmanager
def admin_gateway(db: Path, **extra: Any) -> Iterator[Running]:
    with serve(admin_config(db, **extra)) as gw:
        yield gw


def fail_next(gw: Running, n: int) -> None:
    broken = gw.relay.services.providers["broken"]
    broken.script([ProviderUnavailableError("upstream down (scripted)") for _ in range(n)])  # type: ignore[attr-defined]


def chat(gw: Running, *, user: str | None = None, key: str = MASTER, model: str = "m",
         text: str = "hello there") -> httpx.Response:
    headers = {"authorization": f"Bearer {key}", **({"x-llmrelay-user": user} if user else {})}
    body = {"model": model, "max_tokens": 10, "messages": [{"role": "user", "content": text}]}
    r = httpx.post(gw.url + "/v1/chat/completions", json=body, headers=headers, timeout=10)
    return r


def get(gw: Running, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.get(gw.url + path, headers=ADMIN if headers is None else headers, timeout=15)


def post(gw: Running, path: str, body: Any = None, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(gw.url + path, json=body, headers=ADMIN if headers is None else headers, timeout=15)


def db_rows(db: Path, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
    """Read the gateway's SQLite file directly (a second connection, as an auditor would)."""
    conn = sqlite3.connect(db, timeout=5)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()

