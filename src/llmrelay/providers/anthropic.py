"""The Anthropic Messages API adapter (kind ``anthropic``).

    from llmrelay.providers.anthropic import AnthropicProvider
    from llmrelay.providers.base import ProviderSettings

    claude = AnthropicProvider(ProviderSettings(name="anthropic", kind="anthropic", api_key="sk-ant-..."))
    result = await claude.complete(ChatRequest(model="claude-haiku-4-5", messages=(Message.user("Hi"),)))

``base_url`` is the bare origin (``https://api.anthropic.com``, or a proxy's); the adapter appends
``/v1/messages``. Options (``providers.<name>.options`` in the config):

* ``beta``: a beta flag or a list of them, sent as ``anthropic-beta``;
* ``anthropic_version``: the ``anthropic-version`` header (default ``2023-06-01``);
* ``default_max_tokens``: ``max_tokens`` when a request gives none (default 4096; the API
  requires one).

The wire mapping lives in ``anthropic_wire`` (requests), ``anthropic_decode`` (answers and streams)
and ``anthropic_errors`` (error bodies); this module does the HTTP around them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from ..errors import LLMRelayError
from ..transport import HTTPRequest, Transport
from ..types import ChatRequest, ChatResult, ModelInfo
from .anthropic_decode import AnthropicStreamDecoder, result_from_body
from .anthropic_errors import error_from_body, error_from_response, retry_after_seconds
from .anthropic_models import traits
from .anthropic_wire import DEFAULT_MAX_TOKENS, request_body
from .base import Capabilities, HTTPProvider, ProviderSettings

API_VERSION = "2023-06-01"
# The fields /v1/messages/count_tokens accepts, out of a full Messages body.
_COUNT_FIELDS = ("model", "messages", "system", "tools", "tool_choice", "thinking", "cache_control", "mcp_servers")


class AnthropicProvider(HTTPProvider):
    kind: ClassVar[str] = "anthropic"
    capabilities: ClassVar[Capabilities] = Capabilities(
        streaming=True, tools=True, vision=True, reasoning=True, json_schema=True, prefill=True, count_tokens=True
    )
    default_base_url: ClassVar[str | None] = "https://api.anthropic.com"

    def __init__(
        self,
        settings: ProviderSettings,
        transport: Transport | None = None,
        *,
        now: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(settings, transport)
        # Both SDK conventions appear in configs; the adapter owns the /v1 part of the path.
        if self.base_url.endswith("/v1"):
            self.base_url = self.base_url[: -len("/v1")]
        self._now = now
        self._default_max_tokens = int(settings.options.get("default_max_tokens", DEFAULT_MAX_TOKENS))

    # ---- headers -------------------------------------------------------------------------------

    def auth_headers(self) -> dict[str, str]:
        opts = self.settings.options
        headers = {"anthropic-version": str(opts.get("anthropic_version", API_VERSION))}
        if self.settings.api_key:
            headers["x-api-key"] = self.settings.api_key
        beta = opts.get("beta")
        if beta:
            headers["anthropic-beta"] = beta if isinstance(beta, str) else ",".join(str(b) for b in beta)
        return headers

    # ---- the wire mapping ----------------------------------------------------------------------

    def to_wire(self, request: ChatRequest, *, stream: bool) -> HTTPRequest:
        body = request_body(request, stream=stream, default_max_tokens=self._default_max_tokens)
        return self.post("/v1/messages", body, stream=stream)

    def from_wire(self, body: Any) -> ChatResult:
        if isinstance(body, dict) and body.get("type") == "error":
            # A 200 carrying an error body happens behind some proxies.
            raise self._with_name(error_from_body(200, body))
        return result_from_body(body)

    def stream_decoder(self) -> AnthropicStreamDecoder:
        return AnthropicStreamDecoder(lambda data: self._with_name(error_from_body(200, data)))

    def map_error(self, status: int, headers: Mapping[str, str], body: bytes) -> LLMRelayError:
        err = error_from_response(status, body)
        err.retry_after = retry_after_seconds(headers, self._now)
        return err

    def _with_name(self, err: LLMRelayError) -> LLMRelayError:
        err.provider = err.provider or self.name
        return err

    # ---- other endpoints -----------------------------------------------------------------------

    async def count_tokens(self, request: ChatRequest) -> int | None:
        """The exact prompt size, from ``POST /v1/messages/count_tokens``."""
        full = request_body(request, stream=False, default_max_tokens=self._default_max_tokens)
        body = {k: full[k] for k in _COUNT_FIELDS if k in full}
        resp = await self._send(self.post("/v1/messages/count_tokens", body))
        answer = self.parse_json(await resp.read(), "token count")
        return int(answer["input_tokens"])

    async def list_models(self) -> list[ModelInfo]:
        """Every model the key can use, following ``GET /v1/models`` pagination."""
        models: list[ModelInfo] = []
        after: str | None = None
        while True:
            url = f"{self.base_url}/v1/models?limit=1000" + (f"&after_id={after}" if after else "")
            headers = {**self.auth_headers(), **self.settings.headers}
            resp = await self._send(HTTPRequest("GET", url, headers, read_timeout=self.settings.timeout_s))
            page = self.parse_json(await resp.read(), "model list")
            for item in page.get("data") or ():
                models.append(
                    ModelInfo(id=item["id"], provider=self.name, max_output_tokens=traits(item["id"]).max_output)
                )
            after = page.get("last_id")
            if not page.get("has_more") or not after:
                return models

