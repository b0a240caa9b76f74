"""The OpenAI API under ``/openai/v1``: chat completions (JSON and SSE), models, embeddings, moderations.

Shapes follow recorded exchanges: ``chat.completion`` / ``chat.completion.chunk`` objects, a final
usage chunk with empty ``choices`` when ``stream_options.include_usage`` is set, then ``data: [DONE]``.
Reasoning text, when requested, is sent as ``reasoning_content`` (the OpenAI-compatible convention).
"""

from __future__ import annotations

from typing import Any

from ..streaming import encode_sse
from .answer import Answer, Prompt, ToolSpec, compose, count_tokens
from .exchange import SSE, Dialect, Exchange, Handler, Headers, Reply, SimError, dumps
from .vectors import embed, to_base64

BASE = "/openai/v1"
MODELS = ("gpt-4o-mini", "gpt-4o", "gpt-4.1-mini", "o3-mini", "gpt-5-mini", "sim-model",
          "text-embedding-3-small", "text-embedding-3-large", "omni-moderation-latest")
_REASONING_MODELS = ("o1", "o3", "o4", "gpt-5")
_ERROR_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 403: "permission_error",
                404: "invalid_request_error", 429: "requests"}
_ERROR_CODES = {401: "invalid_api_key", 404: "model_not_found", 429: "rate_limit_exceeded"}
_TRIGGERS = {
    "violence": ("kill", "murder", "bomb", "shoot", "stab"),
    "hate": ("hate all", "subhuman", "vermin"),
    "harassment": ("idiot", "loser", "worthless"),
    "self-harm": ("suicide", "kill myself", "self-harm"),
    "sexual": ("porn", "explicit sex"),
    "illicit": ("cocaine", "meth", "steal a car"),
}
_CATEGORIES = ("harassment", "harassment/threatening", "hate", "hate/threatening", "illicit",
               "illicit/violent", "self-harm", "self-harm/intent", "self-harm/instructions", "sexual",
               "sexual/minors", "violence", "violence/graphic")


def require_model(ex: Exchange) -> str:
    if not ex.model:
        raise SimError(400, "you must provide a model parameter")
    if ex.model.startswith("unknown"):
        raise SimError(404, f"The model `{ex.model}` does not exist or you do not have access to it.")
    return ex.model


def _text_of(content: Any) -> tuple[str, int]:
    """The text of a content field (string or parts) and how many images it holds."""
    if isinstance(content, str):
        return content, 0
    texts, images = [], 0
    for part in content or ():
        kind = part.get("type")
        if kind == "text":
            texts.append(part.get("text", ""))
        elif kind in ("image_url", "input_image"):
            images += 1
    return " ".join(texts), images


def to_prompt(body: dict[str, Any], model: str) -> Prompt:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise SimError(400, "Invalid 'messages': expected a non-empty array.")
    prefill = ""
    if len(messages) > 1 and messages[-1].get("role") == "assistant" and not messages[-1].get("tool_calls"):
        # A trailing assistant message is continued, as vLLM, llama.cpp and Ollama do.
        prefill, messages = _text_of(messages[-1].get("content"))[0], messages[:-1]
    texts, images, last_user = [], 0, ""
    for m in messages:
        text, n = _text_of(m.get("content"))
        images += n
        texts.append(text)
        for call in m.get("tool_calls") or ():
            texts.append(call["function"]["name"] + call["function"].get("arguments", ""))
        if m.get("role") == "user":
            last_user = text
    results: list[str] = []
    for m in reversed(messages):
        if m.get("role") != "tool":
            break
        results.insert(0, _text_of(m.get("content"))[0])
    tools = tuple(ToolSpec(t["function"]["name"], t["function"].get("parameters") or {})
                  for t in body.get("tools") or () if t.get("type", "function") == "function")
    effort = body.get("reasoning_effort") or (body.get("reasoning") or {}).get("effort")
    reasoning = effort in ("low", "medium", "high", "xhigh") or (
        model.startswith(_REASONING_MODELS) and effort not in ("none", "minimal"))
    return Prompt(texts=tuple(texts), last_user=last_user, n_messages=len(messages), images=images,
                  tools=tools, tool_choice=_tool_choice(body.get("tool_choice")), tool_results=tuple(results),
                  reasoning=reasoning, prefill=prefill,
                  max_tokens=body.get("max_completion_tokens") or body.get("max_tokens"))


def _tool_choice(choice: Any) -> str:
    if isinstance(choice, dict):
        return str((choice.get("function") or {}).get("name") or "required")
    return str(choice or "auto")


def usage(a: Answer) -> dict[str, Any]:
    return {
        "prompt_tokens": a.input_tokens,
        "completion_tokens": a.output_tokens,
        "total_tokens": a.total_tokens,
        "prompt_tokens_details": {"cached_tokens": a.cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": a.reasoning_tokens, "audio_tokens": 0,
                                      "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
    }


def _call_json(a: Answer) -> list[dict[str, Any]]:
    return [{"id": f"call_{c.id[:24]}", "type": "function",
             "function": {"name": c.name, "arguments": c.arguments_json}} for c in a.calls]


class OpenAIDialect(Dialect):
    name = "openai"

    def routes(self) -> dict[tuple[str, str], Handler]:
        return {("POST", f"{BASE}/chat/completions"): self.chat, ("GET", f"{BASE}/models"): self.models,
                ("POST", f"{BASE}/embeddings"): self.embeddings, ("POST", f"{BASE}/moderations"): self.moderations}

    def error(self, status: int, message: str) -> Reply:
        err = {"message": message, "type": _ERROR_TYPES.get(status, "server_error"), "param": None,
               "code": _ERROR_CODES.get(status)}
        return Reply(status=status, body=dumps({"error": err}), headers=[(b"x-request-id", b"req_sim")])

    def rate_headers(self, remaining_requests: int, reset_s: float, tokens: int, now: float) -> Headers:
        return [(b"x-ratelimit-limit-requests", b"10000"), (b"x-ratelimit-limit-tokens", b"2000000"),
                (b"x-ratelimit-remaining-requests", str(remaining_requests).encode()),
                (b"x-ratelimit-remaining-tokens", str(max(tokens, 0)).encode()),
                (b"x-ratelimit-reset-requests", f"{reset_s:.3f}s".encode()),
                (b"x-ratelimit-reset-tokens", f"{reset_s:.3f}s".encode())]

    async def chat(self, ex: Exchange) -> Reply:
        model = require_model(ex)
        answer = compose(to_prompt(ex.body, model), ex.options)
        rid = f"chatcmpl-{answer.digest[:29]}"
        headers = [(b"x-request-id", f"req_{answer.digest[:24]}".encode()), (b"openai-version", b"2020-10-01"),
                   (b"openai-processing-ms", b"1")]
        if ex.body.get("stream"):
            include = bool((ex.body.get("stream_options") or {}).get("include_usage"))
            return Reply(frames=_frames(answer, rid, model, ex.created, include), content_type=SSE, headers=headers)
        message: dict[str, Any] = {"role": "assistant", "content": answer.text or None, "refusal": None,
                                   "annotations": []}
        if answer.reasoning:
            message["reasoning_content"] = answer.reasoning
        if answer.calls:
            message["tool_calls"] = _call_json(answer)
        body = {"id": rid, "object": "chat.completion", "created": ex.created, "model": model,
                "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": answer.finish}],
                "usage": usage(answer), "service_tier": "default", "system_fingerprint": "fp_sim"}
        return Reply(body=dumps(body), headers=headers)

    async def models(self, ex: Exchange) -> Reply:
        data = [{"id": m, "object": "model", "created": 1_700_000_000, "owned_by": "llmrelay-sim"} for m in MODELS]
        return Reply(body=dumps({"object": "list", "data": data}))

    async def embeddings(self, ex: Exchange) -> Reply:
        model = require_model(ex)
        texts = _inputs(ex.body.get("input"))
        dims = int(ex.body.get("dimensions") or (3072 if "large" in model else 1536))
        b64 = ex.body.get("encoding_format") == "base64"
        data = []
        for i, text in enumerate(texts):
            vec = embed(text, dims)
            data.append({"object": "embedding", "index": i, "embedding": to_base64(vec) if b64 else vec})
        tokens = sum(count_tokens(t) for t in texts)
        body = {"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
        return Reply(body=dumps(body))

    async def moderations(self, ex: Exchange) -> Reply:
        texts = _inputs(ex.body.get("input"))
        model = ex.model or "omni-moderation-latest"
        results = [_moderate(t) for t in texts]
        return Reply(body=dumps({"id": ex.rid("modr-"), "model": model, "results": results}))


def _inputs(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not value:
        raise SimError(400, "'input' must be a non-empty string or array")
    out = []
    for item in value:
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, dict):
            out.append(str(item.get("text", "")))
        else:  # token ids: the tokens themselves stand for the text
            out.append(" ".join(map(str, item if isinstance(item, list) else [item])))
    return out


def _moderate(text: str) -> dict[str, Any]:
    low = text.lower()
    hit = {cat for cat, words in _TRIGGERS.items() if any(w in low for w in words)}
    categories = {c: c in hit for c in _CATEGORIES}
    scores = {c: (0.97 if c in hit else 0.0001) for c in _CATEGORIES}
    applied = {c: ["text"] for c in _CATEGORIES}
    return {"flagged": bool(hit), "categories": categories, "category_scores": scores,
            "category_applied_input_types": applied}


def _frames(a: Answer, rid: str, model: str, created: int, include_usage: bool) -> list[bytes]:
    head = {"id": rid, "object": "chat.completion.chunk", "created": created, "model": model,
            "service_tier": "default", "system_fingerprint": "fp_sim"}
    tail: dict[str, Any] = {"usage": None} if include_usage else {}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return encode_sse(dumps({**head, "choices": [choice], **tail}))

    frames = [chunk({"role": "assistant", "content": "", "refusal": None})]
    frames += [chunk({"reasoning_content": p}) for p in a.reasoning_pieces]
    frames += [chunk({"content": p}) for p in a.pieces]
    for i, call in enumerate(_call_json(a)):
        fn = call["function"]
        first = {**call, "index": i, "function": {"name": fn["name"], "arguments": ""}}
        frames.append(chunk({"tool_calls": [first]}))
        args = fn["arguments"]
        for j in range(0, len(args), 16):
            frames.append(chunk({"tool_calls": [{"index": i, "function": {"arguments": args[j : j + 16]}}]}))
    frames.append(chunk({}, a.finish))
    if include_usage:
        frames.append(encode_sse(dumps({**head, "choices": [], "usage": usage(a)})))
    frames.append(b"data: [DONE]\n\n")
    return frames
