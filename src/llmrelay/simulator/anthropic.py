"""The Anthropic Messages API under ``/anthropic/v1``: messages (JSON and SSE), count_tokens, models.

The stream has the real event sequence: ``message_start``, then per block ``content_block_start``
(a ``ping`` after the first), ``content_block_delta`` (``thinking_delta`` + ``signature_delta``,
``text_delta`` or ``input_json_delta``) and ``content_block_stop``; then ``message_delta`` with the
stop reason and usage, and ``message_stop``. A final assistant message is a prefill: the answer
continues it. ``input_tokens`` excludes cache reads, as Anthropic counts.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

from ..streaming import encode_sse
from .answer import Answer, Prompt, ToolSpec, compose
from .exchange import SSE, Dialect, Exchange, Handler, Headers, Reply, SimError, dumps

BASE = "/anthropic/v1"
MODELS = (("claude-sonnet-4-5", "Claude Sonnet 4.5"), ("claude-haiku-4-5", "Claude Haiku 4.5"),
          ("claude-opus-4-1", "Claude Opus 4.1"), ("sim-model", "Simulated model"))
_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error", 529: "overloaded_error"}
_STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}


def _block_text(block: Any) -> tuple[str, int]:
    if isinstance(block, str):
        return block, 0
    kind = block.get("type")
    if kind == "text":
        return str(block.get("text", "")), 0
    if kind == "image":
        return "", 1
    if kind == "tool_use":
        return block.get("name", "") + dumps(block.get("input", {})).decode(), 0
    if kind == "tool_result":
        return _content_text(block.get("content"))
    return "", 0


def _content_text(content: Any) -> tuple[str, int]:
    if isinstance(content, str):
        return content, 0
    texts, images = [], 0
    for block in content or ():
        text, n = _block_text(block)
        images += n
        if text:
            texts.append(text)
    return " ".join(texts), images


def to_prompt(body: dict[str, Any]) -> Prompt:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise SimError(400, "messages: at least one message is required")
    if not isinstance(body.get("max_tokens"), int):
        raise SimError(400, "max_tokens: Field required")
    prefill = ""
    if messages[-1].get("role") == "assistant":
        prefill = _content_text(messages[-1].get("content"))[0].rstrip()
        messages = messages[:-1]
    texts = [_content_text(body.get("system"))[0]] if body.get("system") else []
    images, last_user = 0, ""
    results: tuple[str, ...] = ()
    for m in messages:
        text, n = _content_text(m.get("content"))
        texts.append(text)
        images += n
        blocks = m.get("content") if isinstance(m.get("content"), list) else []
        tool_results = tuple(_content_text(b.get("content"))[0] for b in blocks if b.get("type") == "tool_result")
        results = tool_results
        if m.get("role") == "user" and not tool_results:
            last_user = text
    tools = tuple(ToolSpec(t["name"], t.get("input_schema") or {}) for t in body.get("tools") or () if "input_schema" in t)
    thinking = (body.get("thinking") or {}).get("type") in ("enabled", "adaptive")
    return Prompt(texts=tuple(texts), last_user=last_user, n_messages=len(messages), images=images, tools=tools,
                  tool_choice=_tool_choice(body.get("tool_choice")), tool_results=results, reasoning=thinking,
                  prefill=prefill, max_tokens=body["max_tokens"])


def _tool_choice(choice: Any) -> str:
    kind = (choice or {}).get("type", "auto")
    return {"any": "required", "tool": str((choice or {}).get("name"))}.get(kind, kind)


def usage(a: Answer, final: bool = True) -> dict[str, Any]:
    return {"input_tokens": a.input_tokens - a.cached_tokens, "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": a.cached_tokens,
            "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
            "output_tokens": a.output_tokens if final else 1, "service_tier": "standard"}


def _signature(a: Answer) -> str:
    return base64.b64encode(bytes.fromhex(a.digest) * 4).decode()


def _content(a: Answer) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if a.reasoning:
        blocks.append({"type": "thinking", "thinking": a.reasoning, "signature": _signature(a)})
    if a.text:
        blocks.append({"type": "text", "text": a.text})
    blocks += [{"type": "tool_use", "id": f"toolu_01{c.id[:22]}", "name": c.name, "input": c.arguments} for c in a.calls]
    return blocks


class AnthropicDialect(Dialect):
    name = "anthropic"

    def routes(self) -> dict[tuple[str, str], Handler]:
        return {("POST", f"{BASE}/messages"): self.messages, ("POST", f"{BASE}/messages/count_tokens"): self.count_tokens,
                ("GET", f"{BASE}/models"): self.models}

    def check_auth(self, ex: Exchange) -> None:
        key = ex.headers.get("x-api-key") or ex.headers.get("authorization", "").removeprefix("Bearer ")
        if not key:
            raise SimError(401, "x-api-key header is required")
        if key.startswith("invalid"):
            raise SimError(401, "invalid x-api-key")
        if "anthropic-version" not in ex.headers:
            raise SimError(400, "anthropic-version: header is required")

    def error(self, status: int, message: str) -> Reply:
        body = {"type": "error", "error": {"type": _ERROR_TYPES.get(status, "api_error"), "message": message},
                "request_id": "req_sim"}
        return Reply(status=status, body=dumps(body), headers=[(b"request-id", b"req_sim")])

    def rate_headers(self, remaining_requests: int, reset_s: float, tokens: int, now: float) -> Headers:
        reset = datetime.fromtimestamp(now + reset_s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ").encode()
        out = [(b"anthropic-ratelimit-requests-limit", b"10000"),
               (b"anthropic-ratelimit-requests-remaining", str(remaining_requests).encode()),
               (b"anthropic-ratelimit-requests-reset", reset)]
        for kind in (b"tokens", b"input-tokens", b"output-tokens"):
            out += [(b"anthropic-ratelimit-" + kind + b"-limit", b"2000000"),
                    (b"anthropic-ratelimit-" + kind + b"-remaining", str(max(tokens, 0)).encode()),
                    (b"anthropic-ratelimit-" + kind + b"-reset", reset)]
        return out

    def _model(self, ex: Exchange) -> str:
        if not ex.model:
            raise SimError(400, "model: Field required")
        if ex.model.startswith("unknown"):
            raise SimError(404, f"model: {ex.model}")
        return ex.model

    async def messages(self, ex: Exchange) -> Reply:
        model = self._model(ex)
        answer = compose(to_prompt(ex.body), ex.options)
        mid = f"msg_01{answer.digest[:22]}"
        headers = [(b"request-id", f"req_01{answer.digest[:22]}".encode())]
        if ex.body.get("stream"):
            return Reply(frames=_frames(answer, mid, model), content_type=SSE, headers=headers)
        body = {"id": mid, "type": "message", "role": "assistant", "model": model, "content": _content(answer),
                "stop_reason": _STOP[answer.finish], "stop_sequence": None, "usage": usage(answer)}
        return Reply(body=dumps(body), headers=headers)

    async def count_tokens(self, ex: Exchange) -> Reply:
        self._model(ex)
        prompt = to_prompt({**ex.body, "max_tokens": 1})
        return Reply(body=dumps({"input_tokens": compose(prompt, ex.options).input_tokens}))

    async def models(self, ex: Exchange) -> Reply:
        data = [{"type": "model", "id": m, "display_name": name, "created_at": "2025-09-29T00:00:00Z"}
                for m, name in MODELS]
        return Reply(body=dumps({"data": data, "has_more": False, "first_id": data[0]["id"], "last_id": data[-1]["id"]}))


def _event(obj: dict[str, Any]) -> bytes:
    return encode_sse(dumps(obj), event=obj["type"])


def _frames(a: Answer, mid: str, model: str) -> list[bytes]:
    message: dict[str, Any] = {"id": mid, "type": "message", "role": "assistant", "model": model, "content": [],
               "stop_reason": None, "stop_sequence": None, "usage": usage(a, final=False)}
    frames = [_event({"type": "message_start", "message": message})]
    for index, block in enumerate(_content(a)):
        frames += _block_frames(a, index, block)
        if index == 0:
            frames.insert(2, _event({"type": "ping"}))
    final = usage(a)
    final.pop("cache_creation")
    final.pop("service_tier")
    frames.append(_event({"type": "message_delta", "delta": {"stop_reason": _STOP[a.finish], "stop_sequence": None},
                          "usage": final}))
    frames.append(_event({"type": "message_stop"}))
    return frames


def _block_frames(a: Answer, index: int, block: dict[str, Any]) -> list[bytes]:
    def delta(d: dict[str, Any]) -> bytes:
        return _event({"type": "content_block_delta", "index": index, "delta": d})

    kind = block["type"]
    if kind == "thinking":
        start: dict[str, Any] = {"type": "thinking", "thinking": "", "signature": ""}
        body = [delta({"type": "thinking_delta", "thinking": p}) for p in a.reasoning_pieces]
        body.append(delta({"type": "signature_delta", "signature": block["signature"]}))
    elif kind == "text":
        start = {"type": "text", "text": ""}
        body = [delta({"type": "text_delta", "text": p}) for p in a.pieces]
    else:
        start = {**block, "input": {}}
        args = dumps(block["input"]).decode()
        body = [delta({"type": "input_json_delta", "partial_json": args[i : i + 16]}) for i in range(0, len(args), 16)]
    return [_event({"type": "content_block_start", "index": index, "content_block": start}), *body,
            _event({"type": "content_block_stop", "index": index})]
