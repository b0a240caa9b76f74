"""The overhead benchmark harness (issue #11).

One run starts a minimal fake upstream (raw asyncio, precomputed bytes), the gateway under test in
its own process pinned to one core, and drives both with an aiohttp load generator pinned to the
other core, so every figure for the gateway has the direct call beside it:

    python benchmarks/overhead.py            # the full run, results in benchmarks/results/
    llmrelay bench                           # a few seconds, prints the table

Modules: ``upstream`` (the fake provider), ``load`` (the load generator and its statistics),
``procs`` (starting, pinning and reading CPU time and memory of processes), ``configs`` (the three
gateway configurations), ``runner`` (one whole run), ``report`` (JSON and markdown).
Everything listens on 127.0.0.1 and every phase is bounded in requests and seconds.
"""
