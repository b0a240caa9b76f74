"""The configuration: a YAML file validated into one immutable :class:`Settings` object.

``${VAR}`` and ``${VAR:-default}`` are expanded from the environment before validation. Every
problem is reported with its path and line in the file, and unknown keys come with a suggestion:

    >>> s = Settings.from_dict({"providers": {"sim": {"kind": "openai", "base_url": "http://x/v1"}},
    ...                         "models": {"fast": [{"provider": "sim", "model": "gpt-4o-mini"}]}})
    >>> s.models["fast"][0].model
    'gpt-4o-mini'

Each section is its own model below, in the order of the request path. Settings are never mutated:
a reload builds a new object and the relay swaps it in whole.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from .errors import ConfigError


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ------------------------------------------------------------------------------------- sections


class ServerConfig(_Section):
    host: str = "127.0.0.1"
    port: int = Field(4000, ge=0, le=65535)
    master_key: str | None = None
    workers: int = Field(1, ge=1)
    max_body_bytes: int = Field(20 * 1024 * 1024, gt=0)
    # Seconds a streamed answer is kept so a dropped client can resume it (0 = off).
    stream_resume_ttl_s: float = Field(300.0, ge=0)
    cors_origins: list[str] = []
    # The HTTP server `llmrelay serve` runs the app in: uvicorn (uvloop + httptools), granian (Rust;
    # the `granian` extra), or auto = the one measured to spend less CPU per request (uvicorn today,
    # benchmarks/results/PROFILE.md round five).
    http_server: Literal["auto", "uvicorn", "granian"] = "auto"
    # uvicorn's HTTP/1.1 protocol: llmrelay's own (llmrelay.server.h1_protocol: less CPU per request)
    # or uvicorn's httptools one (the kill switch).
    http_protocol: Literal["llmrelay", "httptools"] = "llmrelay"
    # `llmrelay serve` only (never a library user's process): once the app is built, move its
    # start-up heap out of every later garbage collection (gc.freeze; llmrelay.server.gc_tuning).
    gc_freeze: bool = True
    # `llmrelay serve` only: the collector's young-generation threshold (None: Python's 700). Higher
    # means fewer collector passes; reference cycles (an error response leaves one) wait longer.
    gc_gen0_threshold: int | None = Field(10_000, ge=1)


class StorageConfig(_Section):
    url: str = "sqlite:///llmrelay.db"
    # Store prompt and answer text in the ledger (PII redacted first). Off: metadata only.
    store_content: bool = False
    retention_days: int | None = Field(None, ge=1)
    ledger_batch_size: int = Field(500, ge=1)
    ledger_flush_s: float = Field(0.5, gt=0)
    # PostgreSQL: apply pending schema migrations at start-up (SQLite always does). Off: start-up
    # refuses an old schema and asks for `llmrelay db upgrade`.
    auto_migrate: bool = True


class RedisConfig(_Section):
    url: str | None = None
    # What budgets do when Redis cannot be reached: keep serving on local counters, or refuse.
    on_unavailable: Literal["fail_open", "fail_closed"] = "fail_open"
    # Seconds a request waits for each Redis reply before falling back to local state;
    # raise it for a Redis across a slow link or gateways whose event loop runs hot.
    timeout_s: float = Field(0.5, gt=0, le=30)


class ProviderConfig(_Section):
    kind: str
    base_url: str | None = None
    api_key: str | None = None
    rpm: int | None = Field(None, gt=0)
    tpm: int | None = Field(None, gt=0)
    timeout_s: float = Field(60.0, gt=0)
    stall_timeout_s: float | None = Field(30.0, gt=0)
    connect_timeout_s: float = Field(10.0, gt=0)
    max_connections: int = Field(256, gt=0)
    headers: dict[str, str] = {}
    # Azure OpenAI.
    api_version: str | None = None
    deployment: str | None = None
    # Anything else the adapter understands (see its docstring).
    options: dict[str, Any] = {}

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, v: str) -> str:
        from .providers.registry import known_kinds

        kinds = known_kinds()
        if v not in kinds:
            hint = difflib.get_close_matches(v, kinds, n=1)
            raise ValueError(
                f"unknown provider kind {v!r}"
                + (f"; did you mean {hint[0]!r}?" if hint else f"; known: {', '.join(kinds)}")
            )
        return v


class Deployment(_Section):
    provider: str
    model: str
    weight: float = Field(1.0, gt=0)
    rpm: int | None = Field(None, gt=0)
    tpm: int | None = Field(None, gt=0)
    # Context window of this deployment, for routing context-window errors elsewhere.
    max_input_tokens: int | None = Field(None, gt=0)


class BackoffConfig(_Section):
    base_s: float = Field(0.25, ge=0)
    max_s: float = Field(8.0, ge=0)


class CircuitConfig(_Section):
    failures: int = Field(5, ge=1)
    window_s: float = Field(30.0, gt=0)
    cooldown_s: float = Field(30.0, gt=0)


class RoutingConfig(_Section):
    strategy: Literal["ordered", "weighted", "latency", "least_busy"] = "ordered"
    retries: int = Field(2, ge=0)
    timeout_s: float = Field(60.0, gt=0)
    # Overall deadline for a request, retries included.
    deadline_s: float | None = Field(None, gt=0)
    backoff: BackoffConfig = BackoffConfig()
    circuit: CircuitConfig = CircuitConfig()
    health_check_interval_s: float | None = Field(None, gt=0)
    # Model groups to try when a request is too long for its group, or refused by a content policy.
    context_window_fallbacks: dict[str, str] = {}
    content_policy_fallbacks: dict[str, str] = {}
    # Stream recovery: continue a broken stream on the same or the next deployment.
    stream_recovery: bool = True
    # Continuations per stream before the break is reported to the client.
    stream_recovery_attempts: int = Field(3, ge=0)
    # Seconds without a chunk, once a stream has started, before it counts as stalled and is
    # recovered (None: rely on each provider's stall_timeout_s at the transport).
    stall_timeout_s: float | None = Field(None, gt=0)


class RateLimitConfig(_Section):
    # Longest a request waits in the rate-limit queue (or for a deployment with capacity) before
    # it is refused with 429 and a Retry-After.
    max_wait_s: float = Field(10.0, ge=0)
    # Requests / tokens per minute for each distinct caller user (the OpenAI `user` field or
    # x-llmrelay-user), on top of any key limit; None = no per-user limit.
    user_rpm: int | None = Field(None, gt=0)
    user_tpm: int | None = Field(None, gt=0)


class SemanticCacheConfig(_Section):
    enabled: bool = False
    threshold: float = Field(0.95, gt=0, le=1)


class CacheConfig(_Section):
    enabled: bool = False
    backend: Literal["memory", "redis", "sqlite"] = "memory"
    # Where a sqlite/redis cache lives (sqlite:///file.db, redis://host/0). Default: redis.url for
    # redis; for sqlite, llmrelay-cache.db beside the storage.url SQLite file.
    url: str | None = None
    ttl_s: float = Field(3600.0, gt=0)
    max_entries: int = Field(10_000, gt=0)
    max_bytes: int = Field(256 * 1024 * 1024, gt=0)
    # Cache answers to sampling requests (temperature > 0 without a seed) too.
    cache_nondeterministic: bool = False
    scope: Literal["global", "key", "team"] = "global"
    ttl_by_model: dict[str, float] = {}
    semantic: SemanticCacheConfig = SemanticCacheConfig()


class DedupConfig(_Section):
    enabled: bool = True
    # Also join sampling requests (temperature > 0 without a seed).
    include_nondeterministic: bool = False
    # Bounded buffer per joined caller, in chunks.
    buffer_chunks: int = Field(256, gt=0)
    # Across gateway instances (redis.url set, cache.backend redis): how long a request waits for
    # the cached answer of an identical one in flight on another instance before calling upstream
    # itself; 0 turns cross-instance dedup off.
    cross_instance_wait_s: float = Field(5.0, ge=0)
    # Lifetime of the in-flight lock; the leader renews it while its call runs, so a leader that
    # dies frees it within this.
    cross_instance_lock_s: float = Field(10.0, gt=0)


class BudgetConfig(_Section):
    scope: Literal["global", "team", "key", "user", "session", "model"] = "global"
    # For a non-global scope: the team / key id / user / session / model group it applies to
    # ("*" = each one separately).
    id: str = "*"
    period: Literal["day", "week", "month", "total"] = "month"
    limit_usd: float = Field(gt=0)
    alert_at: list[float] = [0.5, 0.8, 0.95]

    @field_validator("alert_at")
    @classmethod
    def _fractions(cls, v: list[float]) -> list[float]:
        for f in v:
            if not 0 < f <= 1:
                raise ValueError(f"alert fractions are between 0 and 1, got {f}")
        return sorted(v)


class EmergencyBrakeConfig(_Section):
    max_usd: float = Field(gt=0)
    window_s: float = Field(60.0, gt=0)


class PriceOverride(_Section):
    input_per_mtok: float = Field(ge=0)
    output_per_mtok: float = Field(ge=0)
    cache_read_per_mtok: float | None = Field(None, ge=0)
    cache_write_per_mtok: float | None = Field(None, ge=0)
    cache_write_1h_per_mtok: float | None = Field(None, ge=0)
    reasoning_per_mtok: float | None = Field(None, ge=0)
    # Output limit, used for the worst-case cost of a call that gives no max_tokens.
    max_output_tokens: int | None = Field(None, gt=0)


class VolumeDiscount(_Section):
    # Once spend in the discount period passes above_usd, later calls cost (1 - discount) as much.
    above_usd: float = Field(ge=0)
    discount: float = Field(gt=0, lt=1)


class PricingConfig(_Section):
    # Keyed "provider/model" (provider as named in this config) or a bare model name.
    overrides: dict[str, PriceOverride] = {}
    currency: str = "USD"
    # 1 USD = rate units of the currency.
    exchange_rates: dict[str, float] = {}
    timezone: str = "UTC"
    volume_discounts: list[VolumeDiscount] = []
    discount_period: Literal["day", "week", "month", "total"] = "month"
    # Worst-case output when neither the request nor the price data gives a limit.
    default_max_output_tokens: int = Field(4096, gt=0)
    # Reservation head-room on the worst-case estimate for models counted approximately.
    estimate_margin: float = Field(1.1, ge=1)
    # Count OpenAI models' prompts exactly with tiktoken for budget reservations. Off by default:
    # the vocabularies cost ~80 MB per gateway process, for a reservation that is a worst case anyway
    # (the calibrated estimate times estimate_margin is used instead).
    exact_token_counts: bool = False


class SafetyRule(_Section):
    name: str
    kind: Literal["regex", "keywords", "topic_deny", "topic_allow"] = "regex"
    pattern: str | None = None
    keywords: list[str] = []
    fuzzy: bool = False
    action: Literal["allow", "flag", "redact", "block"] = "block"
    applies_to: Literal["input", "output", "both"] = "both"


class SafetyConfig(_Section):
    level: Literal["off", "low", "moderate", "strict"] = "low"
    audit: bool = True
    rules: list[SafetyRule] = []
    # Per-category action overrides: {"pii": "redact", "toxicity": "flag"}.
    actions: dict[str, Literal["allow", "flag", "redact", "block"]] = {}
    # Restore redacted values in the answer, so the model never sees them but the user does.
    restore_redacted: bool = False
    # Per team / per key overrides that inherit from this policy.
    teams: dict[str, dict[str, Any]] = {}
    keys: dict[str, dict[str, Any]] = {}
    moderation: dict[str, Any] | None = None
    # The learned injection/toxicity scorer on prompts (llmrelay.safety.learned): auto = on when the
    # 'semantic' extra is installed; on = required (start-up fails without the extra); off = regex only.
    # Off by default: a prompt it examines costs 30-140 ms of CPU (MiniLM on two 256-token windows),
    # for a few points of recall (see benchmarks/safety_eval.py); opt in where that trade is right.
    learned: Literal["auto", "on", "off"] = "off"
    # Local ONNX text classifiers of your choosing (llmrelay.safety.classifier): each is
    # {path, category, labels, flag_at, block_at, ...}; its findings count on their own.
    classifiers: list[dict[str, Any]] = []
    # Secret that keys the audit hash chain and pseudonyms; generated and stored if not given.
    audit_secret: str | None = None

    @model_validator(mode="after")
    def _valid_overrides(self) -> SafetyConfig:
        # Team and key overrides are free-form dicts here; their schema lives with the policies.
        from .safety.policy import validate_overrides

        problems = validate_overrides(self)
        if problems:
            raise ValueError("; ".join(problems))
        if self.classifiers:
            # Checked now (files present, labels known), so a bad entry fails the load or the
            # reload with a clear message instead of the first prompt; the models load later.
            from .safety.classifier import check_classifiers

            check_classifiers(self.classifiers)
        return self


class AlertsConfig(_Section):
    webhook_url: str | None = None
    timeout_s: float = Field(5.0, gt=0)


class LoggingConfig(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["json", "text"] = "json"
    access_log: bool = False


class TracingConfig(_Section):
    # OpenTelemetry spans (the ``otel`` extra): one per request and one per upstream attempt.
    enabled: bool = False
    # otlp: OTLP/HTTP to endpoint (needs opentelemetry-exporter-otlp-proto-http); console: stdout;
    # none: spans are made but only exported by a processor added in code (tests).
    exporter: Literal["otlp", "console", "none"] = "otlp"
    endpoint: str | None = None
    service_name: str = "llmrelay"
    sample_ratio: float = Field(1.0, ge=0, le=1)


# ---------------------------------------------------------------------------------------- root


class Settings(_Section):
    server: ServerConfig = ServerConfig()
    storage: StorageConfig = StorageConfig()
    redis: RedisConfig = RedisConfig()
    providers: dict[str, ProviderConfig] = {}
    models: dict[str, list[Deployment]] = {}
    routing: RoutingConfig = RoutingConfig()
    ratelimit: RateLimitConfig = RateLimitConfig()
    cache: CacheConfig = CacheConfig()
    dedup: DedupConfig = DedupConfig()
    budgets: list[BudgetConfig] = []
    emergency_brake: EmergencyBrakeConfig | None = None
    pricing: PricingConfig = PricingConfig()
    safety: SafetyConfig = SafetyConfig()
    alerts: AlertsConfig = AlertsConfig()
    logging: LoggingConfig = LoggingConfig()
    tracing: TracingConfig = TracingConfig()
    # Your own layers, "module:factory" (a factory build(services, next) -> Handler | None), run
    # in this order just before the router (llmrelay.pipeline.layer_specs).
    extra_layers: list[str] = []
    # Where the settings came from (not part of the schema a user writes).
    source: str | None = Field(None, exclude=True)

    @model_validator(mode="after")
    def _deployments_name_providers(self) -> Settings:
        problems = cross_reference_problems({"providers": self.providers, "models": self.models})
        if problems:
            # Its own error type: _validate reports these per location from the data instead.
            raise PydanticCustomError(CROSS_REFERENCE, "; ".join(f"{'.'.join(loc)}: {msg}" for loc, msg in problems))
        return self

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str | None = None) -> Settings:
        return _validate(dict(data), source=source, lines=None)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> Settings:
        return load_settings(path, env)

    def model_names(self) -> list[str]:
        return list(self.models)


# ------------------------------------------------------------------------------------- loading

CROSS_REFERENCE = "cross_reference"


def cross_reference_problems(data: Mapping[str, Any]) -> list[tuple[tuple[str, ...], str]]:
    """Model groups that are empty or name an unknown provider, as (location, message). Reads
    validated settings and raw data alike, so ``config check`` lists them beside schema errors."""
    providers, models = data.get("providers", {}), data.get("models")
    if not isinstance(providers, Mapping) or not isinstance(models, Mapping):
        return []  # a schema error already says so
    names = [str(n) for n in providers]
    problems: list[tuple[tuple[str, ...], str]] = []
    for group, deployments in models.items():
        if not isinstance(deployments, list):
            continue
        if not deployments:
            problems.append((("models", str(group)), "a model group needs at least one deployment"))
        for i, d in enumerate(deployments):
            provider = d.get("provider") if isinstance(d, Mapping) else getattr(d, "provider", None)
            if isinstance(provider, str) and provider not in names:
                hint = difflib.get_close_matches(provider, names, n=1)
                problems.append(((("models", str(group), str(i), "provider")),
                                 f"no provider named {provider!r}" + (f"; did you mean {hint[0]!r}?" if hint else "")))
    return problems


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}")


def expand_env(text: str, env: Mapping[str, str]) -> str:
    """Expand ``${VAR}`` and ``${VAR:-default}``; an unset ``${VAR}`` becomes empty."""

    def sub(m: re.Match[str]) -> str:
        value = env.get(m.group(1))
        if value is None or (value == "" and m.group(2) is not None):
            return m.group(2) or ""
        return value

    return _VAR.sub(sub, text)


def _expand_tree(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        out = expand_env(node, env)
        # A value that was only a variable and expanded to nothing means "not set".
        return None if out == "" and _VAR.fullmatch(node.strip()) else out
    if isinstance(node, list):
        return [_expand_tree(x, env) for x in node]
    if isinstance(node, dict):
        return {k: _expand_tree(v, env) for k, v in node.items()}
    return node


def _line_map(node: yaml.Node, path: tuple[str, ...] = (), out: dict[tuple[str, ...], int] | None = None) -> dict[tuple[str, ...], int]:
    """Map each path in a YAML document to its 1-based line."""
    out = {} if out is None else out
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            key = (*path, str(k.value))
            out[key] = k.start_mark.line + 1
            _line_map(v, key, out)
            out[key] = k.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            _line_map(v, (*path, str(i)), out)
    return out


def _fields_at(loc: tuple[Any, ...]) -> list[str]:
    """The field names allowed at ``loc`` in the schema, for "did you mean" suggestions."""
    model: Any = Settings
    for part in loc:
        if model is None:
            return []
        fields = getattr(model, "model_fields", None)
        if fields is None:
            return []
        f = fields.get(str(part))
        if f is None:
            # A dict or list level: step through to the value type.
            return []
        ann = f.annotation
        model = _inner_model(ann)
    fields = getattr(model, "model_fields", None)
    return list(fields) if fields else []


def _inner_model(ann: Any) -> Any:
    import typing

    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return ann
    for arg in typing.get_args(ann):
        m = _inner_model(arg)
        if m is not None:
            return m
    return None


def _describe(err: Mapping[str, Any]) -> str:
    loc = err["loc"]
    if err["type"] == "extra_forbidden":
        allowed = _fields_at(_schema_loc(loc[:-1]))
        hint = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        return f"unknown key {loc[-1]!r}" + (f"; did you mean {hint[0]!r}?" if hint else "")
    msg = str(err["msg"])
    return msg.removeprefix("Value error, ")


def _schema_loc(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """Drop dict keys and list indexes from a location, keeping only schema field names."""
    out: list[Any] = []
    model: Any = Settings
    i = 0
    while i < len(loc):
        part = loc[i]
        fields = getattr(model, "model_fields", None) if model is not None else None
        if fields and str(part) in fields:
            out.append(part)
            model = _inner_model(fields[str(part)].annotation)
        i += 1
    return tuple(out)


def _validate(data: dict[str, Any], *, source: str | None, lines: dict[tuple[str, ...], int] | None) -> Settings:
    try:
        return Settings.model_validate({**data, "source": source})
    except ValidationError as exc:
        # Schema errors stop the model validator, so cross references are checked on the raw data
        # (one run reports both), each at its own location.
        found = [(tuple(str(p) for p in err["loc"]), _describe(err)) for err in exc.errors() if err["type"] != CROSS_REFERENCE]
        found += cross_reference_problems(data)
        found = found or [((), _describe(err)) for err in exc.errors()]  # never an empty report
        raise ConfigProblems([_locate(loc, msg, source, lines) for loc, msg in found]) from None


def _locate(loc: tuple[str, ...], msg: str, source: str | None, lines: dict[tuple[str, ...], int] | None) -> str:
    """``file:line: dotted.path: message`` (the nearest enclosing line when the key is absent)."""
    line = None
    if lines:
        probe = loc
        while probe and probe not in lines:
            probe = probe[:-1]
        line = lines.get(probe)
    prefix = f"{source}:{line}: " if source and line else (f"{source}: " if source else "")
    return f"{prefix}{'.'.join(loc) or '(top level)'}: {msg}"


class ConfigProblems(ConfigError):
    """A config failed validation; ``problems`` lists each one with its location."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid configuration:\n  " + "\n  ".join(problems))


def load_settings(path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> Settings:
    """Read, expand and validate a config file; raises :class:`ConfigProblems`."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigProblems([f"{p}: cannot read the file ({exc.strerror or exc})"]) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{p}:{mark.line + 1}" if mark is not None else str(p)
        raise ConfigProblems([f"{where}: not valid YAML ({getattr(exc, 'problem', exc)})"]) from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigProblems([f"{p}:1: the top level must be a mapping of sections"])
    expanded = _expand_tree(raw, os.environ if env is None else env)
    lines = _line_map(node) if node is not None else None
    return _validate(expanded, source=str(p), lines=lines)


def settings_from_env(env: Mapping[str, str] | None = None) -> Settings:
    """Settings when no config file is given: providers from the usual environment variables,
    one model group per provider's well-known models (so ``gpt-4o-mini`` just works)."""
    from .providers.presets import providers_from_env

    env = os.environ if env is None else env
    providers, models = providers_from_env(env)
    data: dict[str, Any] = {"providers": providers, "models": models}
    if env.get("LLMRELAY_MASTER_KEY"):
        data["server"] = {"master_key": env["LLMRELAY_MASTER_KEY"]}
    return Settings.from_dict(data, source="environment")
