"""LiteLLM's ``model_list`` -> llmrelay ``providers`` and ``models``.

A LiteLLM deployment names its upstream as ``"<litellm provider>/<model>"`` with its own
``api_base``/``api_key``; llmrelay names providers once and points model groups at them. Identical
(kind, base URL, key, API version, headers) tuples become one provider, so ten deployments on one
account share one connection pool.

The prefix table is data about LiteLLM's naming: a LiteLLM prefix that is already an llmrelay
provider kind (``openai``, ``anthropic``, ``groq``...) maps to itself through the registry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..providers.registry import known_kinds
from ._notes import Notes

# LiteLLM prefixes whose llmrelay kind has another name.
_ALIASES: dict[str, str] = {
    "together_ai": "together",
    "hosted_vllm": "vllm",
    "ollama_chat": "ollama",
    "text-completion-openai": "openai",
    "azure_ai": "azure",
    "lm_studio": "lmstudio",
    "llamafile": "llamacpp",
}

# LiteLLM prefixes for servers that also speak the OpenAI protocol at their api_base (plus this
# path): Hugging Face TGI / Inference Endpoints serve the Messages API under /v1.
_OPENAI_AT_BASE: dict[str, str] = {"huggingface": "/v1", "xinference": "", "custom_openai": "", "openai_like": ""}

# Bare model names (no prefix) LiteLLM attributes to a provider by their family.
_FAMILIES: tuple[tuple[str, str], ...] = (
    (r"^(gpt-|chatgpt|o\d|text-embedding-|davinci|babbage|dall-e|whisper|tts-)", "openai"),
    (r"^claude", "anthropic"),
    (r"^gemini", "gemini"),
)

# litellm_params keys this translation reads; every other key is reported.
_USED_PARAMS = {"model", "api_base", "base_url", "api_key", "api_version", "rpm", "tpm",
                "extra_headers", "headers", "organization", "max_input_tokens",
                "input_cost_per_token", "output_cost_per_token", "weight", "order"}


def env_ref(value: Any) -> Any:
    """``os.environ/VAR`` (LiteLLM's env reference) -> ``${VAR}``; other values unchanged."""
    if isinstance(value, str) and value.startswith("os.environ/"):
        return "${" + value.removeprefix("os.environ/") + "}"
    return value


def resolve_kind(model: str) -> tuple[str | None, str]:
    """The llmrelay kind and upstream model for a LiteLLM model string (kind None: no adapter)."""
    prefix, sep, rest = model.partition("/")
    kinds = set(known_kinds())
    if sep:
        kind = _ALIASES.get(prefix, prefix)
        if kind in kinds:
            return kind, rest
        return None, model
    for pattern, kind in _FAMILIES:
        if re.match(pattern, model):
            return kind, model
    return None, model


@dataclass
class ModelsOut:
    providers: dict[str, dict[str, Any]] = field(default_factory=dict)
    models: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    pricing: dict[str, dict[str, float]] = field(default_factory=dict)
    # Provider name per identity tuple, so equal accounts share one provider.
    by_identity: dict[tuple[Any, ...], str] = field(default_factory=dict)


def _provider_for(out: ModelsOut, kind: str, params: dict[str, Any]) -> str:
    headers = dict(params.get("extra_headers") or params.get("headers") or {})
    if params.get("organization"):
        headers["OpenAI-Organization"] = str(env_ref(params["organization"]))
    base = env_ref(params.get("api_base") or params.get("base_url"))
    identity = (kind, base, env_ref(params.get("api_key")), params.get("api_version"),
                tuple(sorted(headers.items())))
    name = out.by_identity.get(identity)
    if name is not None:
        return name
    name, n = kind, 1
    while name in out.providers:
        n += 1
        name = f"{kind}-{n}"
    entry: dict[str, Any] = {"kind": kind}
    if base:
        entry["base_url"] = base
    if identity[2]:
        entry["api_key"] = identity[2]
    if params.get("api_version"):
        entry["api_version"] = str(env_ref(params["api_version"]))
    if headers:
        entry["headers"] = {k: str(env_ref(v)) for k, v in headers.items()}
    out.providers[name] = entry
    out.by_identity[identity] = name
    return name


def _rate(entry: dict[str, Any], params: dict[str, Any], key: str) -> int | None:
    value = params.get(key, entry.get(key))
    if value is None:
        return None
    try:
        return int(str(value).replace("_", ""))
    except ValueError:
        return None


def _deployment(out: ModelsOut, entry: dict[str, Any], notes: Notes, where: str) -> dict[str, Any] | None:
    params = dict(entry.get("litellm_params") or {})
    model = str(params.get("model", ""))
    if model in ("", "*") or model.endswith("/*"):
        notes.skip(f"{where}: wildcard model {model!r} (llmrelay reaches any model of a configured "
                   "provider directly as 'provider/model'; list the groups you serve explicitly)")
        return None
    kind, upstream = resolve_kind(model)
    prefix, _, rest = model.partition("/")
    base = params.get("api_base") or params.get("base_url")
    if kind is None and prefix in _OPENAI_AT_BASE and base:
        kind, upstream = "openai", rest
        params["api_base"] = str(env_ref(base)).rstrip("/") + _OPENAI_AT_BASE[prefix]
        params.pop("base_url", None)
        notes.approx(f"{where}: {prefix} at {base} became kind openai at {params['api_base']} "
                     "(its OpenAI-compatible API)")
    if kind is None:
        notes.skip(f"{where}: model {model!r}: no llmrelay adapter for this provider "
                   "(OpenAI-compatible servers work as kind: openai with base_url)")
        return None
    dep: dict[str, Any] = {"provider": _provider_for(out, kind, params), "model": upstream}
    for key in ("rpm", "tpm"):
        value = _rate(entry, params, key)
        if value is not None and value > 0:
            dep[key] = value
    info = entry.get("model_info") or {}
    if params.get("max_input_tokens") or info.get("max_input_tokens"):
        dep["max_input_tokens"] = int(params.get("max_input_tokens") or info["max_input_tokens"])
    if params.get("weight"):
        dep["weight"] = float(params["weight"])
    _price(out, dep, {**info, **params})
    extra = sorted(set(params) - _USED_PARAMS)
    if extra:
        notes.skip(f"{where}: litellm_params {', '.join(extra)} (per-deployment request defaults and "
                   "cloud credentials have no llmrelay equivalent; set them in the client)")
    return dep


def _price(out: ModelsOut, dep: dict[str, Any], params: dict[str, Any]) -> None:
    inp, outp = params.get("input_cost_per_token"), params.get("output_cost_per_token")
    if inp is None or outp is None:
        return
    out.pricing[f"{dep['provider']}/{dep['model']}"] = {
        "input_per_mtok": round(float(inp) * 1e6, 6), "output_per_mtok": round(float(outp) * 1e6, 6)}


def translate_model_list(model_list: list[Any], notes: Notes) -> ModelsOut:
    out = ModelsOut()
    for i, entry in enumerate(model_list or []):
        where = f"model_list[{i}]"
        if not isinstance(entry, dict) or "model_name" not in entry:
            notes.skip(f"{where}: not a model entry (needs model_name and litellm_params)")
            continue
        group = str(entry["model_name"])
        if group == "*":
            notes.skip(f"{where}: wildcard model_name '*' (see the migration guide)")
            continue
        dep = _deployment(out, entry, notes, f"{where} ({group})")
        if dep is not None:
            out.models.setdefault(group, []).append(dep)
    return out
