"""OpenAI-style error bodies -> llmrelay errors, for answers and for errors inside a stream.

The decision reads the HTTP status and the structured ``error.code`` / ``error.type`` fields, never
the message text. The shapes seen in the wild are all accepted:

    {"error": {"message": "...", "type": "invalid_request_error", "code": "context_length_exceeded"}}
    {"error": {"code": 429, "message": "...", "metadata": {"raw": "..."}}}            # OpenRouter
    {"object": "error", "message": "...", "type": "BadRequestError", "code": 400}     # vLLM
    {"error": "model not found"}                                                      # llama.cpp, Ollama

    >>> type(error_from_payload({"error": {"code": "context_length_exceeded", "message": "too long"}}, 400))
    <class 'llmrelay.errors.ContextWindowExceededError'>
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson

from ..errors import (
    AuthenticationError,
    ContentPolicyError,
    ContextWindowExceededError,
    LLMRelayError,
    ModelNotFoundError,
    NotFoundError,
    PermissionDeniedError,
    ProviderError,
    ProviderResponseError,
    RateLimitError,
    UpstreamQuotaError,
    error_for_status,
)

# error.code or error.type -> class, where the code says more than the status.
_BY_CODE: dict[str, type[LLMRelayError]] = {
    "context_length_exceeded": ContextWindowExceededError,
    "string_above_max_length": ContextWindowExceededError,
    "exceed_context_size_error": ContextWindowExceededError,  # llama.cpp server
    "content_filter": ContentPolicyError,
    "content_policy_violation": ContentPolicyError,
    "insufficient_quota": UpstreamQuotaError,
    "billing_hard_limit_reached": UpstreamQuotaError,
    "model_not_found": ModelNotFoundError,
    "invalid_api_key": AuthenticationError,
    "authentication_error": AuthenticationError,
    "permission_error": PermissionDeniedError,
    "rate_limit_exceeded": RateLimitError,
    "rate_limit_error": RateLimitError,
}


def _details(payload: Any) -> tuple[str, str | None, str | None, int | None, str | None]:
    """(message, code, type, numeric status, param) from any of the known error shapes."""
    err = payload.get("error", payload) if isinstance(payload, Mapping) else payload
    if isinstance(err, str):
        return err, None, None, None, None
    if not isinstance(err, Mapping):
        return str(err), None, None, None, None
    message = str(err.get("message") or err.get("detail") or "no message")
    raw = (err.get("metadata") or {}).get("raw") if isinstance(err.get("metadata"), Mapping) else None
    if isinstance(raw, str) and raw:
        message = f"{message}: {raw}"
    code, status = err.get("code"), err.get("status_code")
    if isinstance(code, int):
        status, code = status or code, None
    param = err.get("param")
    etype = err.get("type")
    return (message, str(code) if code else None, str(etype) if etype else None,
            int(status) if isinstance(status, int) else None, str(param) if param else None)


def error_from_payload(payload: Any, status: int | None, *, provider: str | None = None) -> LLMRelayError:
    """The error for a parsed error body; ``status`` None means it came inside a 200 stream."""
    message, code, etype, inner_status, param = _details(payload)
    status = status if status and status >= 400 else inner_status
    cls = _BY_CODE.get(code or "") or _BY_CODE.get(etype or "")
    if cls is None:
        cls = error_for_status(status) if status else ProviderError
    if cls is ModelNotFoundError and status == 404 and code is None and etype is None:
        cls = NotFoundError
    label = code or etype
    text = f"{message} ({label})" if label and label not in message else message
    return cls(text, provider=provider, param=param, upstream_status=status)


def map_openai_error(
    status: int, headers: Mapping[str, str], body: bytes, *, provider: str | None = None
) -> LLMRelayError:
    """The error for a non-2xx answer: JSON error bodies, HTML pages and plain text alike."""
    try:
        payload = orjson.loads(body) if body.strip() else None
    except orjson.JSONDecodeError:
        payload = None
    if payload is None:
        err = _non_json_error(status, body, provider)
    else:
        err = error_from_payload(payload, status, provider=provider)
    if err.retry_after is None:
        err.retry_after = reset_seconds(headers)
    return err


def _non_json_error(status: int, body: bytes, provider: str | None) -> LLMRelayError:
    snippet = body[:200].decode("utf-8", errors="replace").strip()
    is_html = snippet.lower().startswith(("<!doctype", "<html"))
    if is_html:
        title = re.search(r"<title>(.*?)</title>", body[:4000].decode("utf-8", errors="replace"), re.I | re.S)
        what = f"an HTML page ({title.group(1).strip()!r})" if title else "an HTML page"
    else:
        what = repr(snippet) if snippet else "an empty body"
    hint = "; check base_url" if status in (404, 405) or (is_html and status < 500) else ""
    cls = error_for_status(status)
    if cls is ModelNotFoundError:
        cls = NotFoundError  # an HTML 404 means a wrong URL, not an unknown model
    if is_html and status < 400:
        cls = ProviderResponseError
    return cls(f"the upstream answered {status} with {what}{hint}", provider=provider, upstream_status=status)


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: str) -> float | None:
    """OpenAI's reset durations: ``"1s"``, ``"6m0s"``, ``"20ms"``, ``"2m59.56s"`` (or bare seconds)."""
    value = value.strip()
    try:
        return float(value)
    except ValueError:
        pass
    parts = _DURATION.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value:
        return None
    return sum(float(n) * _UNIT[u] for n, u in parts)


def reset_seconds(headers: Mapping[str, str]) -> float | None:
    """Seconds until the exhausted limit resets, from ``x-ratelimit-reset-{requests,tokens}``.

    A limit whose ``remaining`` is 0 decides; when neither says, the later reset is the safe wait.
    """
    waits: list[float] = []
    exhausted: list[float] = []
    for kind in ("requests", "tokens"):
        raw = headers.get(f"x-ratelimit-reset-{kind}")
        seconds = parse_duration(raw) if raw else None
        if seconds is None:
            continue
        waits.append(seconds)
        if headers.get(f"x-ratelimit-remaining-{kind}", "").strip() == "0":
            exhausted.append(seconds)
    if exhausted:
        return max(exhausted)
    return max(waits) if waits else None
