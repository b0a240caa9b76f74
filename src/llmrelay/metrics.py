"""Prometheus metrics, with conventional names (``llmrelay_*``, base units, ``_total`` counters).

One :class:`Metrics` per process, on its own registry (so tests can build several). Components get it
from ``services.metrics`` and update it; ``/metrics`` renders ``metrics.render()``. With several worker
processes, set ``PROMETHEUS_MULTIPROC_DIR`` and the server aggregates across them.

Add a metric by adding an attribute in ``__init__``; keep label sets small (no request ids, no users).
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess as _mp

# Latency buckets in seconds: dense below 1 s, where a gateway's own overhead lives.
_LATENCY = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "llmrelay_requests_total", "Requests handled, by outcome.",
            ["model", "provider", "status"], registry=r,
        )
        self.request_latency = Histogram(
            "llmrelay_request_duration_seconds", "Time from request to the last byte of the answer.",
            ["model", "provider"], buckets=_LATENCY, registry=r,
        )
        self.ttft = Histogram(
            "llmrelay_time_to_first_token_seconds", "Time from request to the first chunk of a stream.",
            ["model", "provider"], buckets=_LATENCY, registry=r,
        )
        self.tokens = Counter(
            "llmrelay_tokens_total", "Tokens, by kind (input, output, cache_read, cache_write, reasoning).",
            ["model", "provider", "kind"], registry=r,
        )
        self.cost = Counter(
            "llmrelay_cost_usd_total", "Spend in USD.", ["model", "provider"], registry=r,
        )
        self.unpriced = Counter(
            "llmrelay_unpriced_requests_total", "Requests to a model with no known price.",
            ["provider", "model"], registry=r,
        )
        self.upstream_attempts = Counter(
            "llmrelay_upstream_attempts_total", "Calls to upstream providers, by outcome.",
            ["provider", "outcome"], registry=r,
        )
        self.retries = Counter(
            "llmrelay_retries_total", "Retried upstream attempts.", ["provider", "reason"], registry=r,
        )
        self.circuit_state = Gauge(
            "llmrelay_circuit_state", "Circuit breaker per deployment: 0 closed, 1 half-open, 2 open.",
            ["provider", "model"], registry=r, multiprocess_mode="max",
        )
        self.ratelimit_wait = Histogram(
            "llmrelay_ratelimit_wait_seconds", "Time requests waited in the rate-limit queue.",
            ["priority"], buckets=_LATENCY, registry=r,
        )
        self.ratelimit_backend_errors = Counter(
            "llmrelay_ratelimit_backend_errors_total",
            "Times the shared (Redis) rate-limit store could not be reached and local limits were used.",
            registry=r,
        )
        self.redis_up = Gauge(
            "llmrelay_redis_up", "1 while Redis (redis.url) answers, 0 while the gateway runs degraded on local state.",
            registry=r, multiprocess_mode="min",
        )
        self.ratelimited = Counter(
            "llmrelay_ratelimited_total", "Requests refused by a gateway rate limit.", ["scope"], registry=r,
        )
        self.cache = Counter(
            "llmrelay_cache_requests_total", "Cache lookups, by result (hit, miss).", ["result"], registry=r,
        )
        self.cache_saved = Counter(
            "llmrelay_cache_saved_usd_total", "Upstream spend avoided by cache hits and joined requests.",
            ["source"], registry=r,
        )
        self.cache_bytes = Gauge(
            "llmrelay_cache_bytes", "Bytes held by the in-process response cache.", registry=r,
            multiprocess_mode="livesum",
        )
        self.cache_evictions = Counter(
            "llmrelay_cache_evictions_total", "Cache entries evicted to stay within cache.max_entries/max_bytes.",
            registry=r,
        )
        self.dedup_joined = Counter(
            "llmrelay_dedup_joined_total", "Requests that joined an identical one in flight.", registry=r,
        )
        self.dedup_fleet = Counter(
            "llmrelay_dedup_fleet_total",
            "Cross-instance dedup, by outcome (led, joined, timeout, takeover, unavailable).", ["outcome"], registry=r,
        )
        self.budget_used = Gauge(
            "llmrelay_budget_used_ratio", "Fraction of a budget spent in its current period.",
            ["scope", "id", "period"], registry=r, multiprocess_mode="max",
        )
        self.budget_refused = Counter(
            "llmrelay_budget_refused_total", "Requests refused because a budget would be exceeded.",
            ["scope"], registry=r,
        )
        self.safety = Counter(
            "llmrelay_safety_decisions_total", "Safety findings, by category, direction and action.",
            ["category", "direction", "action"], registry=r,
        )
        self.ledger_queue = Gauge(
            "llmrelay_ledger_queue_depth", "Usage rows waiting to be written.", registry=r,
            multiprocess_mode="livesum",
        )
        self.streams = Counter(
            "llmrelay_streams_total", "Streams, by outcome (completed, recovered, failed, cancelled).",
            ["outcome"], registry=r,
        )
        self.stream_chunk_interval = Histogram(
            "llmrelay_stream_inter_chunk_seconds", "Time between consecutive chunks of a stream.",
            ["provider"], buckets=_LATENCY, registry=r,
        )
        self.stream_tokens_per_second = Histogram(
            "llmrelay_stream_output_tokens_per_second", "Output tokens per second of a stream after its first chunk.",
            ["provider"], buckets=(1, 5, 10, 25, 50, 100, 200, 400, 800, 1600), registry=r,
        )
        self.stream_recovery = Histogram(
            "llmrelay_stream_recovery_seconds", "Time from a stream's break to the first chunk of its continuation.",
            ["provider"], buckets=_LATENCY, registry=r,
        )

    def render(self) -> bytes:
        """The exposition text; aggregated across worker processes when multiprocess mode is on."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            _mp.MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)
