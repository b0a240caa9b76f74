"""A cheap token estimate for rate limiting before the call: about four characters per token for
the prompt, plus the most the answer may use. It is corrected from the real usage afterwards, so
it only needs to be cheap and roughly right, never exact."""

from __future__ import annotations

from ..types import ChatRequest, ImagePart

# Output assumed when the request sets no max_tokens: a typical answer, not a worst case (the
# real count corrects it, and a worst case would make TPM limits refuse far too early).
DEFAULT_OUTPUT_TOKENS = 256
# What an image costs in most vision models' accounting, roughly.
IMAGE_TOKENS = 765


def estimate_tokens(request: ChatRequest) -> int:
    chars = 0
    images = 0
    for m in request.messages:
        content = m.content
        if isinstance(content, str):
            chars += len(content)
        elif content:
            for p in content:
                text = getattr(p, "text", None)
                if text:
                    chars += len(text)
                elif isinstance(p, ImagePart):
                    images += 1
        for call in m.tool_calls:
            chars += len(call.arguments) + len(call.name)
    for tool in request.tools:
        chars += len(tool.name) + len(tool.description or "") + 20 * len(tool.parameters)
    output = request.max_tokens if request.max_tokens is not None else DEFAULT_OUTPUT_TOKENS
    return chars // 4 + images * IMAGE_TOKENS + output * max(1, request.n)
