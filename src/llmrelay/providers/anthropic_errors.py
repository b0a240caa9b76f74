"""Anthropic error bodies and rate-limit headers -> llmrelay errors.

The API answers ``{"type": "error", "error": {"type": ..., "message": ...}, "request_id": ...}``;
the error ``type`` decides the class, the HTTP status only when the body says nothing:

    >>> err = error_from_body(429, {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}})
    >>> type(err).__name__, err.retryable
    ('RateLimitError', True)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import orjson

from ..errors import (
    AuthenticationError,
    ContextWindowExceededError,
    InvalidRequestError,
    LLMRelayError,
    ModelNotFoundError,
    PermissionDeniedError,
    ProviderError,
    ProviderResponseError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    RateLimitError,
    RequestTooLargeError,
    error_for_status,
)

_BY_TYPE: Mapping[str, type[LLMRelayError]] = {
    "invalid_request_error": InvalidRequestError,
    "authentication_error": AuthenticationError,
    "permission_error": PermissionDeniedError,
    "billing_error": PermissionDeniedError,
    "not_found_error": ModelNotFoundError,
    "request_too_large": RequestTooLargeError,
    "rate_limit_error": RateLimitError,
    "overloaded_error": ProviderUnavailableError,
    "api_error": ProviderError,
    "timeout_error": ProviderTimeoutError,
}

# What to do about each kind of failure, appended to the upstream's own message.
_ADVICE: Mapping[type[LLMRelayError], str] = {
    AuthenticationError: "check the provider's api_key",
    PermissionDeniedError: "check the key's permissions and the account's billing",
    ModelNotFoundError: "check the model name in the config",
    RateLimitError: "retry later or raise the account's limits",
    ProviderUnavailableError: "Anthropic is overloaded; retry shortly or fail over",
    ContextWindowExceededError: "shorten the conversation or lower max_tokens",
}

# The API's documented wording for an over-long prompt (its error type is a plain 400).
_CONTEXT_PHRASES = ("prompt is too long", "exceed context limit", "context window")

_RESET_HEADERS = (
    "anthropic-ratelimit-requests-reset",
    "anthropic-ratelimit-tokens-reset",
    "anthropic-ratelimit-input-tokens-reset",
    "anthropic-ratelimit-output-tokens-reset",
)


def error_from_body(status: int, body: Any) -> LLMRelayError:
    """The error for a parsed Anthropic error body (also used for ``error`` stream events)."""
    info = body.get("error") if isinstance(body, dict) else None
    if not isinstance(info, dict):
        return error_for_status(status)(f"Anthropic answered HTTP {status} with an unexpected body: {str(body)[:200]}")
    kind = str(info.get("type") or "")
    message = str(info.get("message") or kind or f"HTTP {status}")
    cls = _BY_TYPE.get(kind) or error_for_status(status)
    if cls is InvalidRequestError and any(p in message.lower() for p in _CONTEXT_PHRASES):
        cls = ContextWindowExceededError
    if cls is InvalidRequestError and status == 413:
        cls = RequestTooLargeError
    advice = _ADVICE.get(cls)
    request_id = body.get("request_id") if isinstance(body, dict) else None
    text = f"{message} ({kind}" + (f", request {request_id})" if request_id else ")")
    return cls(f"{text}; {advice}" if advice else text)


def error_from_response(status: int, body: bytes) -> LLMRelayError:
    """The error for a non-2xx answer, whatever its body: JSON, HTML from a proxy, or garbage."""
    try:
        parsed = orjson.loads(body) if body.strip() else None
    except orjson.JSONDecodeError:
        parsed = None
    if parsed is not None:
        return error_from_body(status, parsed)
    snippet = body[:120].decode("utf-8", errors="replace").strip()
    looks = "an HTML page" if snippet.lower().startswith(("<!doctype", "<html")) else "a non-JSON body"
    cls = error_for_status(status)
    if status >= 500 and cls is ProviderError:
        cls = ProviderResponseError
    return cls(f"Anthropic answered HTTP {status} with {looks} ({snippet!r}); a proxy or an outage in between?")


def retry_after_seconds(headers: Mapping[str, str], now: Callable[[], float]) -> float | None:
    """Seconds to wait: ``retry-after`` first, else the latest ``anthropic-ratelimit-*-reset``."""
    value = headers.get("retry-after")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
    # The reset of an exhausted limit is the one that matters; without that hint, the latest.
    exhausted = [n for n in _RESET_HEADERS if headers.get(n.replace("-reset", "-remaining")) == "0"]
    waits = []
    for name in exhausted or _RESET_HEADERS:
        stamp = headers.get(name)
        if not stamp:
            continue
        try:
            reset = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
        except ValueError:
            continue
        waits.append(max(0.0, reset - now()))
    return max(waits) if waits else None
