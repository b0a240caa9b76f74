"""Translate a LiteLLM proxy ``config.yaml`` into an llmrelay config.

    >>> from llmrelay.migrate import translate_litellm
    >>> t = translate_litellm({"model_list": [{"model_name": "fast", "litellm_params": {
    ...     "model": "openai/gpt-4o-mini", "api_key": "os.environ/OPENAI_API_KEY", "rpm": 500}}]})
    >>> t.config["providers"]["openai"]
    {'kind': 'openai', 'api_key': '${OPENAI_API_KEY}'}
    >>> t.config["models"]["fast"]
    [{'provider': 'openai', 'model': 'gpt-4o-mini', 'rpm': 500}]

Everything that has no llmrelay equivalent is listed in ``notes.untranslated``; settings carried
over with a behaviour that differs are listed in ``notes.approximated``. :func:`render_yaml` puts
both lists at the top of the output as comments, so the file says what to review.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from ._litellm_models import env_ref, translate_model_list
from ._notes import Notes

_STRATEGIES = {"simple-shuffle": "weighted", "least-busy": "least_busy",
               "latency-based-routing": "latency", "usage-based-routing": "least_busy",
               "usage-based-routing-v2": "least_busy"}
_RELIABILITY = ("num_retries", "timeout", "request_timeout", "allowed_fails", "cooldown_time", "fallbacks",
                "context_window_fallbacks", "content_policy_fallbacks", "default_fallbacks",
                "routing_strategy", "model_group_alias", "redis_host", "redis_port", "redis_password",
                "redis_url")
# A fallback group's deployments are appended with this weight, so a weighted pick almost never
# starts with them: they are tried once the group's own deployments have failed.
FALLBACK_WEIGHT = 0.001


@dataclass
class Translation:
    config: dict[str, Any]
    notes: Notes


def translate_litellm(data: Mapping[str, Any]) -> Translation:
    """Translate a parsed LiteLLM config (the YAML as a mapping)."""
    notes = Notes()
    cfg: dict[str, Any] = {}
    out = translate_model_list(list(data.get("model_list") or []), notes)
    cfg["providers"], cfg["models"] = out.providers, out.models
    if out.pricing:
        cfg["pricing"] = {"overrides": out.pricing}
    router = dict(data.get("router_settings") or {})
    lsettings = dict(data.get("litellm_settings") or {})
    # Router settings win over the same keys in litellm_settings, as in LiteLLM.
    reliability = {**{k: lsettings[k] for k in _RELIABILITY if k in lsettings}, **router}
    _routing(cfg, reliability, notes)
    _litellm_settings(cfg, {k: v for k, v in lsettings.items() if k not in _RELIABILITY}, notes)
    _general(cfg, dict(data.get("general_settings") or {}), notes)
    _environment(cfg, dict(data.get("environment_variables") or {}), notes)
    _guardrails(cfg, list(data.get("guardrails") or []), notes)
    known = {"model_list", "router_settings", "litellm_settings", "general_settings",
             "environment_variables", "guardrails"}
    for key in data:
        if key not in known:
            notes.skip(f"{key}: no llmrelay equivalent")
    return Translation({k: v for k, v in cfg.items() if v not in ({}, None)}, notes)


# ---------------------------------------------------------------------------------------- routing


def _routing(cfg: dict[str, Any], r: dict[str, Any], notes: Notes) -> None:
    routing: dict[str, Any] = {}
    models: dict[str, list[dict[str, Any]]] = cfg["models"]
    _strategy(routing, r.get("routing_strategy"), models, notes)
    if "num_retries" in r:
        routing["retries"] = int(r["num_retries"])
    timeout = r.get("timeout", r.get("request_timeout"))
    if timeout is not None:
        routing["timeout_s"] = float(timeout)
    circuit: dict[str, Any] = {}
    if "allowed_fails" in r:
        # LiteLLM cools a deployment down when it fails more than allowed_fails times in a minute.
        circuit.update(failures=int(r["allowed_fails"]) + 1, window_s=60.0)
    if "cooldown_time" in r:
        circuit["cooldown_s"] = float(r["cooldown_time"])
    if circuit:
        routing["circuit"] = circuit
    for alias, target in dict(r.get("model_group_alias") or {}).items():
        target = target.get("model") if isinstance(target, dict) else target
        if target in models:
            models[str(alias)] = [dict(d) for d in models[target]]
        else:
            notes.skip(f"router_settings.model_group_alias.{alias}: target group {target!r} was not translated")
    _fallbacks(models, r, notes)
    for kind in ("context_window_fallbacks", "content_policy_fallbacks"):
        mapping = _single_fallbacks(r.get(kind), models, kind, notes)
        if mapping:
            routing[kind] = mapping
    _redis(cfg, r, "router_settings")
    for key in sorted(set(r) - set(_RELIABILITY)):
        notes.skip(f"router_settings.{key}: no llmrelay equivalent")
    if routing:
        cfg["routing"] = routing


def _strategy(routing: dict[str, Any], name: Any, models: dict[str, list[dict[str, Any]]], notes: Notes) -> None:
    if name is None:
        # LiteLLM's default is simple-shuffle; it only matters for groups with several deployments.
        if not any(len(d) > 1 for d in models.values()):
            return
        name = "simple-shuffle"
        notes.approx("routing: LiteLLM's default simple-shuffle became strategy 'weighted'")
    strategy = _STRATEGIES.get(str(name))
    if strategy is None:
        notes.skip(f"router_settings.routing_strategy {name!r}: no equivalent (llmrelay uses 'ordered')")
        return
    routing["strategy"] = strategy
    if str(name).startswith("usage-based"):
        notes.approx(f"routing_strategy {name}: became 'least_busy' (fewest requests in flight); "
                     "each deployment's rpm/tpm is still enforced")
    if strategy == "weighted":
        # simple-shuffle weighs deployments by rpm (else tpm) when they are given.
        for deps in models.values():
            for d in deps:
                if d.get("rpm") or d.get("tpm"):
                    d.setdefault("weight", float(d.get("rpm") or d["tpm"]))


def _fallback_lists(value: Any) -> list[tuple[str, list[str]]]:
    """LiteLLM's ``[{"a": ["b", "c"]}, ...]`` as pairs."""
    pairs: list[tuple[str, list[str]]] = []
    for item in value or []:
        if isinstance(item, dict):
            for src, targets in item.items():
                pairs.append((str(src), [str(t) for t in (targets if isinstance(targets, list) else [targets])]))
    return pairs


def _fallbacks(models: dict[str, list[dict[str, Any]]], r: dict[str, Any], notes: Notes) -> None:
    """General fallbacks: the fallback groups' deployments are appended to the group, after its own."""
    own = {g: [dict(d) for d in deps] for g, deps in models.items()}
    pairs = _fallback_lists(r.get("fallbacks"))
    default = [str(x) for x in r.get("default_fallbacks") or []]
    if default:
        pairs += [(g, default) for g in own if g not in default]
    appended = False
    for src, targets in pairs:
        if src not in models:
            notes.skip(f"fallbacks: group {src!r} was not translated")
            continue
        for target in targets:
            if target not in own:
                notes.skip(f"fallbacks: {src} -> {target}: group {target!r} was not translated")
                continue
            for d in own[target]:
                if not any(x["provider"] == d["provider"] and x["model"] == d["model"] for x in models[src]):
                    models[src].append({**d, "weight": FALLBACK_WEIGHT})
                    appended = True
    if appended:
        notes.approx("fallbacks: each fallback group's deployments were appended to the group's own "
                     f"(weight {FALLBACK_WEIGHT}); llmrelay fails over within one ordered group")


def _single_fallbacks(value: Any, models: Mapping[str, Any], kind: str, notes: Notes) -> dict[str, str]:
    out: dict[str, str] = {}
    for src, targets in _fallback_lists(value):
        usable = [t for t in targets if t in models]
        if src not in models or not usable:
            notes.skip(f"{kind}: {src} -> {targets}: group not translated")
            continue
        out[src] = usable[0]
        if len(usable) > 1:
            notes.skip(f"{kind}: {src} -> {usable[1:]}: llmrelay takes one fallback group per group")
    return out


def _redis(cfg: dict[str, Any], s: Mapping[str, Any], where: str) -> None:
    url = s.get("redis_url") or s.get("url")
    host = s.get("redis_host") or s.get("host")
    if not url and host:
        password = s.get("redis_password") or s.get("password")
        auth = f":{env_ref(password)}@" if password else ""
        url = f"redis://{auth}{env_ref(host)}:{env_ref(s.get('redis_port') or s.get('port') or 6379)}/0"
    if url and not cfg.get("redis", {}).get("url"):
        cfg["redis"] = {"url": env_ref(url)}


# ------------------------------------------------------------------------------ litellm_settings


def _litellm_settings(cfg: dict[str, Any], s: dict[str, Any], notes: Notes) -> None:
    handled = {"cache", "cache_params", "max_budget", "budget_duration", "success_callback",
               "failure_callback", "callbacks", "json_logs", "turn_off_message_logging"}
    if s.get("cache"):
        _cache(cfg, dict(s.get("cache_params") or {}), notes)
    if s.get("max_budget"):
        _budget(cfg, float(s["max_budget"]), s.get("budget_duration"), notes)
    callbacks = [*(s.get("success_callback") or []), *(s.get("failure_callback") or []), *(s.get("callbacks") or [])]
    for cb in dict.fromkeys(str(c) for c in callbacks):
        _callback(cfg, cb, notes)
    if s.get("json_logs"):
        cfg["logging"] = {"format": "json"}
    if "turn_off_message_logging" in s:
        cfg.setdefault("storage", {})["store_content"] = not bool(s["turn_off_message_logging"])
    for key in sorted(set(s) - handled):
        notes.skip(f"litellm_settings.{key}: no llmrelay equivalent")


def _cache(cfg: dict[str, Any], p: dict[str, Any], notes: Notes) -> None:
    kind = str(p.get("type", "local"))
    if p.get("supported_call_types") == []:
        notes.approx("litellm_settings.cache_params.supported_call_types is empty (caches nothing): cache left off")
        return
    cache: dict[str, Any] = {"enabled": True}
    if kind in ("redis", "redis-semantic"):
        cache["backend"] = "redis"
        _redis(cfg, p, "cache_params")
    elif kind == "disk":
        cache["backend"] = "sqlite"
    elif kind not in ("local", "in-memory", "qdrant-semantic"):
        notes.skip(f"cache_params.type {kind!r}: llmrelay caches in memory, SQLite or Redis; used memory")
    if kind.endswith("semantic"):
        cache["semantic"] = {"enabled": True, "threshold": float(p.get("similarity_threshold", 0.95))}
        notes.approx("semantic cache: llmrelay embeds locally (MiniLM, the 'semantic' extra); "
                     "the embedding model and vector store settings were not carried over")
    if p.get("ttl"):
        cache["ttl_s"] = float(p["ttl"])
    rest = sorted(set(p) - {"type", "ttl", "host", "port", "password", "url", "similarity_threshold",
                            "supported_call_types"})
    if rest:
        notes.skip(f"litellm_settings.cache_params: {', '.join(rest)}")
    cfg["cache"] = cache


_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h|d|mo)\s*$")


def _budget(cfg: dict[str, Any], limit: float, duration: Any, notes: Notes) -> None:
    period = "total"
    if duration is not None:
        m = _DURATION.match(str(duration))
        n, unit = (int(m.group(1)), m.group(2)) if m else (0, "")
        days = {"s": n / 86400, "m": n / 1440, "h": n / 24, "d": n, "mo": 30 * n}.get(unit, 0)
        period = "day" if days <= 1 else "week" if days <= 7 else "month"
        if (unit, n) not in (("d", 1), ("h", 24), ("d", 7), ("d", 30), ("mo", 1)):
            notes.approx(f"budget_duration {duration}: llmrelay budgets run per calendar {period}")
    cfg.setdefault("budgets", []).append({"scope": "global", "period": period, "limit_usd": limit})


def _callback(cfg: dict[str, Any], cb: str, notes: Notes) -> None:
    if cb == "prometheus":
        notes.approx("callback prometheus: built in, scrape GET /metrics")
    elif cb in ("otel", "opentelemetry"):
        cfg["tracing"] = {"enabled": True, "exporter": "otlp"}
    elif cb == "detect_prompt_injection":
        _safety(cfg, "injection", "block")
    else:
        notes.skip(f"callback {cb!r}: no built-in integration (use the usage ledger, /metrics or tracing)")


# ------------------------------------------------------------------------ general, env, guardrails


def _general(cfg: dict[str, Any], g: dict[str, Any], notes: Notes) -> None:
    server: dict[str, Any] = {}
    if g.get("master_key"):
        server["master_key"] = env_ref(g["master_key"])
        if not str(g["master_key"]).startswith("os.environ/"):
            notes.approx("general_settings.master_key is written in clear: move it to ${LLMRELAY_MASTER_KEY}")
    if server:
        cfg["server"] = server
    if g.get("database_url"):
        url = str(env_ref(g["database_url"]))
        if url.startswith("${") and url.endswith("}"):
            # An unset variable must not leave storage.url empty: fall back to the embedded SQLite.
            url = url[:-1] + ":-sqlite:///llmrelay.db}"
        cfg.setdefault("storage", {})["url"] = url
    alerting = [str(a) for a in g.get("alerting") or []]
    if "webhook" in alerting or "slack" in alerting:
        var = "SLACK_WEBHOOK_URL" if "slack" in alerting else "WEBHOOK_URL"
        cfg["alerts"] = {"webhook_url": "${" + var + "}"}
        notes.approx(f"alerting {alerting}: budget alerts are POSTed as JSON to ${{{var}}}")
    for key in sorted(set(g) - {"master_key", "database_url", "alerting"}):
        notes.skip(f"general_settings.{key}: no llmrelay equivalent")


def _environment(cfg: dict[str, Any], env: dict[str, Any], notes: Notes) -> None:
    redis = {k.lower(): v for k, v in env.items() if k in ("REDIS_HOST", "REDIS_PORT", "REDIS_PASSWORD")}
    if "redis_host" in redis:
        _redis(cfg, redis, "environment_variables")
    for key in sorted(k for k in env if k not in ("REDIS_HOST", "REDIS_PORT", "REDIS_PASSWORD")):
        notes.skip(f"environment_variables.{key}: set it in the gateway's environment instead")


def _safety(cfg: dict[str, Any], category: str, action: str) -> None:
    safety = cfg.setdefault("safety", {"level": "moderate"})
    safety.setdefault("actions", {})[category] = action


_GUARDRAILS = {"presidio": ("pii", "redact"), "lakera": ("injection", "block"), "lakera_v2": ("injection", "block"),
               "hide-secrets": ("secret", "redact"), "hide_secrets": ("secret", "redact"),
               "openai_moderation": ("toxicity", "block")}


def _guardrails(cfg: dict[str, Any], guardrails: list[Any], notes: Notes) -> None:
    for i, g in enumerate(guardrails):
        params = dict((g or {}).get("litellm_params") or {}) if isinstance(g, dict) else {}
        name = str(params.get("guardrail", ""))
        target = _GUARDRAILS.get(name)
        if target is None:
            notes.skip(f"guardrails[{i}] ({name or g}): no built-in equivalent (see the safety guide for custom rules)")
            continue
        _safety(cfg, *target)
        notes.approx(f"guardrails[{i}] {name}: llmrelay's built-in {target[0]} detector, action {target[1]}")


# ------------------------------------------------------------------------------------------ output


def render_yaml(t: Translation, source: str) -> str:
    """The translated config as YAML, with what to review as comments at the top."""
    lines = [f"# llmrelay config translated from the LiteLLM config {source}", "# by `llmrelay import litellm-config`."]
    if t.notes.untranslated:
        lines += ["#", "# NOT TRANSLATED (review these):"] + [f"#   - {n}" for n in t.notes.untranslated]
    if t.notes.approximated:
        lines += ["#", "# APPROXIMATED:"] + [f"#   - {n}" for n in t.notes.approximated]
    body = yaml.safe_dump(t.config, sort_keys=False, default_flow_style=False, allow_unicode=True)
    return "\n".join(lines) + "\n\n" + body
