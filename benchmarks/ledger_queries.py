"""Usage queries on a 1,000,000-row ledger (SQLite, the default backend, or PostgreSQL).

    python benchmarks/ledger_queries.py [--rows 1000000] [--db /tmp/ledger-bench.db]
    python benchmarks/ledger_queries.py --url postgresql://postgres@127.0.0.1:5432/bench

Fills the ledger through the real write path (batched inserts + daily roll-ups + repeated-prompt
roll-up, in one transaction per batch), then times the queries the CLI and the admin API run, each
the median of 5 runs (``--repeat``). Reports are pages of the 1,000 costliest groups (``groups``
counts them all). Whole-day reports read the monthly, weekly and daily roll-ups (a ledger made
before them fills them from its daily roll-ups when it opens, as migration 5 does).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from pathlib import Path

from llmrelay.config import Settings
from llmrelay.cost.analytics import usage_report
from llmrelay.cost.ledger import LedgerRow, UsageQuery, open_ledger
from llmrelay.cost.pricing import PricingEngine

NOW = 1_767_225_600.0  # 2026-01-01


async def fill(url: str, rows: int, seed: int = 7) -> None:
    rnd = random.Random(seed)
    store = open_ledger(url)
    await store.open()
    if await store.count() >= rows:
        return
    models = [f"model-{i}" for i in range(12)]
    batch: list[LedgerRow] = []
    # A ledger is appended in time order: 90 days of traffic, oldest first.
    times = sorted(NOW - rnd.random() * 90 * 86400 for _ in range(rows))
    for i, ts in enumerate(times):
        user = rnd.randrange(2000)  # a user calls with their own key, in their own team
        batch.append(LedgerRow(ts=ts, request_id=f"req_{i:08d}", key_id=f"key-{user % 200}",
                               user_id=f"user-{user}", team=f"team-{user % 20}",
                               session=f"s-{rnd.randrange(50000)}", model_group=rnd.choice(("fast", "smart")),
                               provider=rnd.choice(("p1", "p2", "p3")), model=rnd.choice(models),
                               input_tokens=rnd.randrange(50, 4000), output_tokens=rnd.randrange(1, 800),
                               cost_usd=rnd.random() / 100, latency_ms=rnd.random() * 2000,
                               status="ok" if rnd.random() > 0.02 else "error",
                               prompt_hash=f"{rnd.randrange(200000):x}",
                               # A few system prompts/tool sets shared by many requests.
                               prefix_hash=f"sys-{rnd.randrange(40)}", prefix_tokens=rnd.choice((300, 1200))))
        if len(batch) == 5000:
            await store.write(batch)
            batch = []
    if batch:
        await store.write(batch)
    await store.aclose()


async def bench(url: str, repeat: int = 5) -> list[tuple[str, float]]:
    store = open_ledger(url)
    await store.open()
    settings = Settings()
    engine = PricingEngine()
    cases = {
        "report 7d by model (roll-up)": lambda: usage_report(store, settings, engine, since="7d", by=("model",),
                                                             now=NOW, recommend=False),
        "report 30d by user,day (roll-up, page 1)": lambda: usage_report(store, settings, engine, since="30d",
                                                                         by=("user", "day"), now=NOW,
                                                                         recommend=False),
        "report 30d by user,day (page 30)": lambda: usage_report(store, settings, engine, since="30d",
                                                                 by=("user", "day"), now=NOW, recommend=False,
                                                                 offset=29_000),
        "report 90d by user (roll-up)": lambda: usage_report(store, settings, engine, since="90d", by=("user",),
                                                             now=NOW, recommend=False),
        "report 90d by user,team (roll-up)": lambda: usage_report(store, settings, engine, since="90d",
                                                                  by=("user", "team"), now=NOW, recommend=False),
        "report 45d by user (roll-up)": lambda: usage_report(store, settings, engine, since="45d", by=("user",),
                                                             now=NOW - 9 * 86400, recommend=False),
        "report 90d by provider,model (roll-up)": lambda: usage_report(store, settings, engine, since="90d",
                                                                       by=("provider", "model"), now=NOW,
                                                                       recommend=False),
        "report 90d by key (roll-up)": lambda: usage_report(store, settings, engine, since="90d", by=("key",),
                                                            now=NOW, recommend=False),
        "report 30d by team,day (roll-up)": lambda: usage_report(store, settings, engine, since="30d",
                                                                 by=("team", "day"), now=NOW, recommend=False),
        "report 7d by model with recommendations": lambda: usage_report(store, settings, engine, since="7d",
                                                                        by=("model",), now=NOW),
        "one key, last 24h (raw, indexed)": lambda: store.aggregate(UsageQuery(start=NOW - 86400, by=("model",),
                                                                               filters=(("key_id", "key-7"),))),
        "one session (raw, indexed)": lambda: store.aggregate(UsageQuery(by=("model",),
                                                                         filters=(("session", "s-42"),))),
        "last hour by model (raw)": lambda: store.aggregate(UsageQuery(start=NOW - 3600, by=("model",))),
        "repeated prompts, last 24h": lambda: store.repeated("prompt_hash", NOW - 86400, 2, 20),
        "repeated prompts, last 7d": lambda: store.repeated("prompt_hash", NOW - 7 * 86400, 2, 20),
    }
    out = []
    for name, run in cases.items():
        times = []
        for _ in range(repeat):
            t = time.perf_counter()
            await run()
            times.append((time.perf_counter() - t) * 1000)
        out.append((name, statistics.median(times)))
    await store.aclose()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--db", type=Path, default=Path("/tmp/llmrelay-ledger-bench.db"))
    ap.add_argument("--url", default=None, help="a storage URL instead of --db (e.g. postgresql://...)")
    ap.add_argument("--repeat", type=int, default=5, help="runs per query (the median is printed)")
    args = ap.parse_args()
    url = args.url or f"sqlite:///{args.db}"
    t = time.perf_counter()
    asyncio.run(fill(url, args.rows))
    print(f"ledger ready: {args.rows:,} rows ({time.perf_counter() - t:.1f} s to fill)")
    worst = 0.0
    for name, ms in asyncio.run(bench(url, args.repeat)):
        worst = max(worst, ms)
        print(f"{name:45} {ms:8.2f} ms")
    print(f"slowest: {worst:.2f} ms ({'under' if worst < 100 else 'OVER'} the 100 ms target)")


if __name__ == "__main__":
    main()
