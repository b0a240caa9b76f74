"""External moderation: the OpenAI moderation endpoint, or any configured model used as a judge
(Llama-Guard style), with its own timeout and a fail-open / fail-closed choice.

    safety:
      moderation: {kind: openai, base_url: "http://127.0.0.1:9000/openai/v1", api_key: x,
                   timeout_s: 2, on_error: fail_open}
      # or {kind: judge, provider: local, model: llama-guard3, timeout_s: 5, on_error: fail_closed}

A moderation hit is a ``moderation`` finding covering the whole text, typed with the category the
service named (``HARASSMENT``, ``S1``...). When the service fails or times out, ``fail_open`` lets the
text through (the failure is still reported) and ``fail_closed`` turns it into a blocking finding.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

from ..transport import HTTPRequest, Transport
from ..types import ChatRequest, Message
from .findings import Finding

_JUDGE_PROMPT = (
    "You are a content safety classifier. Read the user's text and answer with exactly one line: "
    "'safe', or 'unsafe' followed by a comma-separated list of violated categories (S1 violent crimes, "
    "S2 non-violent crimes, S3 sex crimes, S4 child exploitation, S5 defamation, S6 specialised advice, "
    "S7 privacy, S8 intellectual property, S9 weapons, S10 hate, S11 self-harm, S12 sexual content, "
    "S13 elections, S14 code interpreter abuse)."
)


class ModerationConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["openai", "judge"] = "openai"
    base_url: str | None = None
    api_key: str | None = None
    model: str | None = None
    # For kind "judge": the configured provider that serves ``model``.
    provider: str | None = None
    timeout_s: float = Field(3.0, gt=0)
    on_error: Literal["fail_open", "fail_closed"] = "fail_open"
    threshold: float = Field(0.5, gt=0, le=1)
    applies_to: Literal["input", "output", "both"] = "input"


class ModerationUnavailable(Exception):
    pass


class Moderator:
    def __init__(self, cfg: ModerationConfig, *, transport: Transport | None = None, providers: dict[str, Any] | None = None) -> None:
        self.cfg = cfg
        self.transport = transport
        self.providers = providers or {}

    def applies(self, direction: str) -> bool:
        return self.cfg.applies_to in ("both", direction)

    async def check(self, text: str) -> tuple[list[Finding], str | None]:
        """Findings, and the error text when the service failed (already handled per on_error)."""
        try:
            call = self._openai(text) if self.cfg.kind == "openai" else self._judge(text)
            return await asyncio.wait_for(call, self.cfg.timeout_s), None
        except (TimeoutError, ModerationUnavailable, OSError, ValueError, KeyError) as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        except Exception as exc:  # provider errors of any kind: the policy decides
            error = f"{type(exc).__name__}: {exc}"
        if self.cfg.on_error == "fail_closed":
            return [Finding("moderation", 0, len(text), 1.0, "UNAVAILABLE")], error
        return [], error

    async def _openai(self, text: str) -> list[Finding]:
        if self.transport is None or not self.cfg.base_url:
            raise ModerationUnavailable("moderation needs base_url and a transport")
        body: dict[str, Any] = {"input": text}
        if self.cfg.model:
            body["model"] = self.cfg.model
        headers = {"content-type": "application/json"}
        if self.cfg.api_key:
            headers["authorization"] = f"Bearer {self.cfg.api_key}"
        resp = await self.transport.send(HTTPRequest("POST", self.cfg.base_url.rstrip("/") + "/moderations", headers, orjson.dumps(body),
                                                     read_timeout=self.cfg.timeout_s))
        raw = await resp.read()
        if resp.status != 200:
            raise ModerationUnavailable(f"moderation endpoint answered {resp.status}")
        result = orjson.loads(raw)["results"][0]
        scores: dict[str, float] = result.get("category_scores") or {}
        flagged: dict[str, bool] = result.get("categories") or {}
        out = []
        for cat, score in sorted(scores.items(), key=lambda kv: -kv[1]):
            if flagged.get(cat) or score >= self.cfg.threshold:
                out.append(Finding("moderation", 0, len(text), float(max(score, self.cfg.threshold if flagged.get(cat) else 0)),
                                   cat.upper().replace("/", "_").replace("-", "_"), cat))
        return out

    async def _judge(self, text: str) -> list[Finding]:
        provider = self.providers.get(self.cfg.provider or "")
        if provider is None or not self.cfg.model:
            raise ModerationUnavailable(f"judge provider {self.cfg.provider!r} or model not configured")
        req = ChatRequest(model=self.cfg.model, messages=(Message.system(_JUDGE_PROMPT), Message.user(text)), temperature=0, max_tokens=20)
        result = await provider.complete(req)
        verdict = result.text.strip().lower()
        if verdict.startswith("safe"):
            return []
        if not verdict.startswith("unsafe"):
            raise ModerationUnavailable(f"judge answered neither safe nor unsafe: {verdict[:40]!r}")
        cats = [c.strip().upper() for c in verdict[6:].replace("\n", ",").split(",") if c.strip()] or ["UNSAFE"]
        return [Finding("moderation", 0, len(text), 1.0, c, c.lower()) for c in cats]


def moderator_from_settings(services: Any) -> Moderator | None:
    raw = services.settings.safety.moderation
    if not raw:
        return None
    cfg = ModerationConfig.model_validate(raw)
    transport = None
    if cfg.kind == "openai":
        transport = services.state.get("moderation_transport")
        if transport is None:
            from ..transport import AiohttpTransport

            transport = services.state.setdefault("moderation_transport", AiohttpTransport())
    return Moderator(cfg, transport=transport, providers=services.providers)
