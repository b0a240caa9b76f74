"""One error hierarchy for the whole gateway.

Every error knows its HTTP status, the OpenAI error ``type``/``code`` and Anthropic error ``type``
it becomes at each edge, and whether a retry could help (``retryable``). Retry decisions read that
attribute, never message text. Provider adapters convert upstream failures into these classes in
exactly one place each (their ``map_error``).

    LLMRelayError
    ├── InvalidRequestError            400  invalid_request_error
    │   ├── ContextWindowExceededError 400  context_length_exceeded
    │   ├── ContentPolicyError         400  content_policy_violation
    │   └── RequestTooLargeError       413  request_too_large
    ├── AuthenticationError            401  invalid_api_key
    ├── PermissionDeniedError          403  permission_denied
    ├── ModelNotFoundError             404  model_not_found
    ├── NotFoundError                  404  not_found
    ├── RateLimitError                 429  rate_limit_exceeded         (retryable)
    │   └── UpstreamQuotaError         429  insufficient_quota          (the upstream account's quota; not retried)
    ├── BudgetExceededError            429  budget_exceeded             (never retried)
    ├── ProviderError                  502  upstream_error              (retryable)
    │   ├── ProviderResponseError      502  bad_upstream_response       (malformed body, HTML...)
    │   ├── ProviderUnavailableError   503  upstream_unavailable        (5xx, refused connection)
    │   ├── ProviderTimeoutError       504  upstream_timeout
    │   └── StreamInterruptedError     502  stream_interrupted          (dropped or stalled stream)
    ├── ConfigError                    500  config_error
    └── GatewayError                   500  internal_error
"""

from __future__ import annotations

from typing import Any, ClassVar


class LLMRelayError(Exception):
    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    openai_type: ClassVar[str] = "api_error"
    anthropic_type: ClassVar[str] = "api_error"
    retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        retry_after: float | None = None,
        param: str | None = None,
        upstream_status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.retry_after = retry_after
        self.param = param
        self.upstream_status = upstream_status

    def __str__(self) -> str:
        return f"{self.provider}: {self.message}" if self.provider else self.message

    def headers(self) -> dict[str, str]:
        """Response headers that go with the error at either edge."""
        h: dict[str, str] = {}
        if self.retry_after is not None:
            h["retry-after"] = str(max(1, int(self.retry_after + 0.999)))
        if self.status in (408, 409, 429) or self.status >= 500:
            # The official SDKs retry 408/409/429/5xx unless told not to.
            h["x-should-retry"] = "true" if self.retryable else "false"
        return h

    def to_openai(self) -> dict[str, Any]:
        return {
            "error": {
                "message": str(self),
                "type": self.openai_type,
                "param": self.param,
                "code": self.code,
            }
        }

    def to_anthropic(self) -> dict[str, Any]:
        return {"type": "error", "error": {"type": self.anthropic_type, "message": str(self)}}


class InvalidRequestError(LLMRelayError):
    status = 400
    code = "invalid_request_error"
    openai_type = "invalid_request_error"
    anthropic_type = "invalid_request_error"


class ContextWindowExceededError(InvalidRequestError):
    code = "context_length_exceeded"


class ContentPolicyError(InvalidRequestError):
    code = "content_policy_violation"


class RequestTooLargeError(InvalidRequestError):
    status = 413
    code = "request_too_large"
    anthropic_type = "request_too_large"


class AuthenticationError(LLMRelayError):
    status = 401
    code = "invalid_api_key"
    openai_type = "authentication_error"
    anthropic_type = "authentication_error"


class PermissionDeniedError(LLMRelayError):
    status = 403
    code = "permission_denied"
    openai_type = "permission_error"
    anthropic_type = "permission_error"


class NotFoundError(LLMRelayError):
    status = 404
    code = "not_found"
    openai_type = "invalid_request_error"
    anthropic_type = "not_found_error"


class ModelNotFoundError(NotFoundError):
    code = "model_not_found"


class RateLimitError(LLMRelayError):
    status = 429
    code = "rate_limit_exceeded"
    openai_type = "rate_limit_error"
    anthropic_type = "rate_limit_error"
    retryable = True


class UpstreamQuotaError(RateLimitError):
    """The upstream account ran out of credit or quota: waiting will not help, another deployment may."""

    code = "insufficient_quota"
    retryable = False


class BudgetExceededError(LLMRelayError):
    status = 429
    code = "budget_exceeded"
    openai_type = "insufficient_quota"
    anthropic_type = "rate_limit_error"
    retryable = False


class ProviderError(LLMRelayError):
    status = 502
    code = "upstream_error"
    retryable = True


class ProviderResponseError(ProviderError):
    code = "bad_upstream_response"


class ProviderUnavailableError(ProviderError):
    status = 503
    code = "upstream_unavailable"
    anthropic_type = "overloaded_error"


class ProviderTimeoutError(ProviderError):
    status = 504
    code = "upstream_timeout"
    anthropic_type = "timeout_error"


class StreamInterruptedError(ProviderError):
    code = "stream_interrupted"


class ConfigError(LLMRelayError):
    code = "config_error"


class GatewayError(LLMRelayError):
    code = "internal_error"


class SharedStateUnavailableError(LLMRelayError):
    """Shared state (Redis) is unreachable and ``redis.on_unavailable`` is ``fail_closed``."""

    status = 503
    code = "shared_state_unavailable"
    retryable = True


# Upstream HTTP status -> the error class it means when a provider gives nothing more specific.
_BY_STATUS: dict[int, type[LLMRelayError]] = {
    400: InvalidRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: ModelNotFoundError,
    408: ProviderTimeoutError,
    409: ProviderUnavailableError,
    413: RequestTooLargeError,
    422: InvalidRequestError,
    429: RateLimitError,
    500: ProviderError,
    502: ProviderUnavailableError,
    503: ProviderUnavailableError,
    504: ProviderTimeoutError,
    529: ProviderUnavailableError,  # Anthropic's "overloaded"
}


def error_for_status(status: int) -> type[LLMRelayError]:
    """The error class for an upstream HTTP status (any 5xx is a retryable provider error)."""
    cls = _BY_STATUS.get(status)
    if cls is not None:
        return cls
    if status >= 500:
        return ProviderError
    return InvalidRequestError
