"""The Ollama API under ``/ollama/api``: chat (JSON, or NDJSON when ``stream`` is true, the default),
tags, embed, version. Usage is ``prompt_eval_count`` and ``eval_count``; durations are nanoseconds.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from .answer import Answer, Prompt, ToolSpec, compose, count_tokens
from .exchange import Dialect, Exchange, Handler, Reply, SimError, dumps
from .vectors import embed

BASE = "/ollama/api"
NDJSON = b"application/x-ndjson"
MODELS = ("llama3.2:latest", "qwen3:8b", "sim-model:latest", "nomic-embed-text:latest")
VERSION = "0.6.3"


def to_prompt(body: dict[str, Any]) -> Prompt:
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise SimError(400, "messages must be a list")
    texts, images, last_user = [], 0, ""
    for m in messages:
        text = str(m.get("content") or "")
        texts.append(text)
        images += len(m.get("images") or ())
        for call in m.get("tool_calls") or ():
            fn = call.get("function", {})
            texts.append(fn.get("name", "") + dumps(fn.get("arguments", {})).decode())
        if m.get("role") == "user":
            last_user = text
    results: list[str] = []
    for m in reversed(messages):
        if m.get("role") != "tool":
            break
        results.insert(0, str(m.get("content") or ""))
    tools = tuple(ToolSpec(t["function"]["name"], t["function"].get("parameters") or {}) for t in body.get("tools") or ())
    think = body.get("think")
    return Prompt(texts=tuple(texts), last_user=last_user, n_messages=len(messages), images=images, tools=tools,
                  tool_results=tuple(results), reasoning=bool(think) and think not in ("false", "none"),
                  max_tokens=(body.get("options") or {}).get("num_predict"))


def _stamp(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _done(a: Answer) -> dict[str, Any]:
    return {"done_reason": "length" if a.finish == "length" else "stop", "done": True,
            "total_duration": 1_000_000 + 50_000 * a.output_tokens, "load_duration": 100_000,
            "prompt_eval_count": a.input_tokens, "prompt_eval_duration": 10_000 * a.input_tokens,
            "eval_count": a.output_tokens, "eval_duration": 50_000 * a.output_tokens}


def _calls(a: Answer) -> list[dict[str, Any]]:
    return [{"function": {"index": i, "name": c.name, "arguments": c.arguments}} for i, c in enumerate(a.calls)]


class OllamaDialect(Dialect):
    name = "ollama"

    def routes(self) -> dict[tuple[str, str], Handler]:
        return {("POST", f"{BASE}/chat"): self.chat, ("GET", f"{BASE}/tags"): self.tags,
                ("POST", f"{BASE}/embed"): self.embed, ("GET", f"{BASE}/version"): self.version}

    def check_auth(self, ex: Exchange) -> None:
        """Local Ollama has no keys; Ollama Cloud refuses a bad bearer token."""
        if ex.headers.get("authorization", "").lower().startswith("bearer invalid"):
            raise SimError(401, "unauthorized")

    def error(self, status: int, message: str) -> Reply:
        return Reply(status=status, body=dumps({"error": message}))

    def _model(self, ex: Exchange) -> str:
        if not ex.model:
            raise SimError(400, "model is required")
        if ex.model.startswith("unknown"):
            raise SimError(404, f'model "{ex.model}" not found, try pulling it first')
        return ex.model

    async def chat(self, ex: Exchange) -> Reply:
        model = self._model(ex)
        answer = compose(to_prompt(ex.body), ex.options)
        stamp = _stamp(ex.now)
        if ex.body.get("stream", True):
            return Reply(frames=_frames(answer, model, stamp), content_type=NDJSON)
        message: dict[str, Any] = {"role": "assistant", "content": answer.text}
        if answer.reasoning:
            message["thinking"] = answer.reasoning
        if answer.calls:
            message["tool_calls"] = _calls(answer)
        return Reply(body=dumps({"model": model, "created_at": stamp, "message": message, **_done(answer)}))

    async def tags(self, ex: Exchange) -> Reply:
        models = [{"name": m, "model": m, "modified_at": "2025-01-01T00:00:00Z", "size": 2_019_393_189,
                   "digest": hashlib.sha256(m.encode()).hexdigest(),
                   "details": {"parent_model": "", "format": "gguf", "family": m.split(":")[0], "families": [m.split(":")[0]],
                               "parameter_size": "3.2B", "quantization_level": "Q4_K_M"}} for m in MODELS]
        return Reply(body=dumps({"models": models}))

    async def embed(self, ex: Exchange) -> Reply:
        model = self._model(ex)
        inputs = ex.body.get("input")
        texts = [inputs] if isinstance(inputs, str) else list(inputs or ())
        if not texts:
            raise SimError(400, "input is required")
        dims = int(ex.body.get("dimensions") or 768)
        body = {"model": model, "embeddings": [embed(str(t), dims) for t in texts], "total_duration": 1_000_000,
                "load_duration": 100_000, "prompt_eval_count": sum(count_tokens(str(t)) for t in texts)}
        return Reply(body=dumps(body))

    async def version(self, ex: Exchange) -> Reply:
        return Reply(body=dumps({"version": VERSION}))


def _frames(a: Answer, model: str, stamp: str) -> list[bytes]:
    head = {"model": model, "created_at": stamp}

    def line(message: dict[str, Any], **extra: Any) -> bytes:
        return dumps({**head, "message": {"role": "assistant", "content": "", **message}, **extra}) + b"\n"

    frames = [line({"thinking": p}, done=False) for p in a.reasoning_pieces]
    frames += [line({"content": p}, done=False) for p in a.pieces]
    if a.calls:
        frames.append(line({"tool_calls": _calls(a)}, done=False))
    frames.append(line({}, **_done(a)))
    return frames
