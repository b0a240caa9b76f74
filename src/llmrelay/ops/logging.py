"""Structured JSON logs, with secrets redacted before a record reaches any output.

    from llmrelay.ops.logging import configure_logging
    configure_logging(settings.logging)          # once, in the process that serves
    logging.getLogger("llmrelay.x").info("reloaded", extra={"fields": {"generation": 3}})

Every record becomes one JSON object per line: ``ts``, ``level``, ``logger``, ``msg`` and the
``fields`` given in ``extra``. :class:`RedactingFilter` sits on the handler, so records propagated
from any logger (ours, uvicorn's, a library's) are cleaned: bearer tokens, ``sk-...`` style keys,
``x-api-key`` values and ``api_key=...`` pairs become ``[REDACTED]``. Message content is never
logged by llmrelay itself (the access line carries sizes and ids, not text); the filter is the
second line of defence for what a third-party library might log.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Mapping
from typing import IO, Any

import orjson

from ..config import LoggingConfig

HANDLER_NAME = "llmrelay-json"
REDACTED = "[REDACTED]"

# Why each pattern: the credential shapes that travel in headers, URLs and error messages.
_SECRET_PATTERNS: tuple[re.Pattern[str], ...] = (
    # Authorization headers (any scheme's token after "Bearer").
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"),
    # OpenAI / Anthropic / OpenRouter style keys, and llmrelay's own virtual keys.
    re.compile(r"\b(?:sk|rk|pk)-[A-Za-z0-9_-]{16,}"),
    # Google API keys.
    re.compile(r"\bAIza[0-9A-Za-z_-]{30,}"),
    # key=value / "key": "value" pairs whose name says they are secret.
    re.compile(r"(?i)((?:api[_-]?key|x-api-key|master[_-]?key|secret|password|token|authorization)"
               r"[\"']?\s*[:=]\s*[\"']?)([^\s\"',;&}]{4,})"),
)


def redact(text: str) -> str:
    """``text`` with every credential-shaped substring replaced by ``[REDACTED]``."""
    for pattern in _SECRET_PATTERNS:
        if pattern.groups:
            text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
        else:
            text = pattern.sub(REDACTED, text)
    return text


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {k: _redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value(v) for v in value]
    return value


class RedactingFilter(logging.Filter):
    """Rewrites a record's message, arguments, structured fields and traceback text in place."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            message = str(record.msg)
        record.msg, record.args = redact(message), None
        fields = getattr(record, "fields", None)
        if isinstance(fields, Mapping):
            record.fields = _redact_value(fields)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record; ``extra={"fields": {...}}`` adds keys at the top level."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": round(record.created, 6),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, Mapping):
            for k, v in fields.items():
                out.setdefault(str(k), v)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            out["exc"] = record.exc_text
        return orjson.dumps(out, default=str).decode()


def make_handler(cfg: LoggingConfig, stream: IO[str] | None = None) -> logging.Handler:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.set_name(HANDLER_NAME)
    handler.addFilter(RedactingFilter())
    if cfg.format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    return handler


def configure_logging(cfg: LoggingConfig, stream: IO[str] | None = None) -> logging.Handler:
    """Install (or replace, on a reload) the llmrelay handler on the ``llmrelay`` logger.

    Idempotent: calling it again swaps the handler, so a reload that changes the level or format
    takes effect without duplicating lines. Redaction is also put on the root logger's handlers,
    so uvicorn and library lines are cleaned too.
    """
    logger = logging.getLogger("llmrelay")
    for old in [h for h in logger.handlers if h.get_name() == HANDLER_NAME]:
        logger.removeHandler(old)
    handler = make_handler(cfg, stream)
    logger.addHandler(handler)
    logger.setLevel(cfg.level.upper())
    # Our handler prints llmrelay's records; the root's would print them a second time.
    logger.propagate = False
    for h in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in h.filters):
            h.addFilter(RedactingFilter())
    return handler
