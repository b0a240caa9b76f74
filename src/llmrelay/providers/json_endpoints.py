"""A provider's other endpoints (model lists, embeddings, token counts): plain GETs and JSON
answers, with the provider's headers and timeout and its errors named after it.

    class MyProvider(JSONEndpointsProvider):
        async def list_models(self) -> list[ModelInfo]:
            body = await self._json(self._get("/v1/models"))
            return [ModelInfo(id=m["id"], provider=self.name) for m in body["data"]]
"""

from __future__ import annotations

from typing import Any

from ..errors import LLMRelayError
from ..transport import HTTPRequest
from .base import HTTPProvider


class JSONEndpointsProvider(HTTPProvider):
    """An :class:`HTTPProvider` with ``_get`` (a GET request) and ``_json`` (send, parse)."""

    def _get(self, path: str) -> HTTPRequest:
        headers = {**self.auth_headers(), **self.settings.headers}
        return HTTPRequest("GET", self.base_url + path, headers, read_timeout=self.settings.timeout_s)

    async def _json(self, http: HTTPRequest) -> Any:
        resp = await self._send(http)
        try:
            return self.parse_json(await resp.read())
        except LLMRelayError as exc:
            exc.provider = exc.provider or self.name  # the caller sees which provider answered badly
            raise
