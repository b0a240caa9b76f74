"""Load the recorded provider exchanges in ``shared/data/wire`` (VCR cassettes) for wire tests.

Each YAML file holds ``interactions``; a request has ``method``, ``uri``, ``headers`` and a
``parsed_body`` (JSON) or raw ``body``; a response has ``status``, ``headers`` and either a
``parsed_body`` (JSON) or ``body.string`` (text: an SSE or NDJSON stream, HTML, ...).

    >>> from tests.conftest import WIRE
    >>> for path in cassettes(WIRE, "openai"):             # doctest: +SKIP
    ...     for it in load_cassette(path):
    ...         if it.is_stream:
    ...             lines = body_lines(it.response_text)   # feed these to a stream decoder

Header values are joined with ", " and names lower-cased, as an HTTP client would present them.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True, slots=True)
class Interaction:
    path: Path
    index: int
    method: str
    uri: str
    request_headers: Mapping[str, str]
    # The request's JSON body, or None when it was recorded raw (then see ``request_text``).
    request_body: Any
    request_text: str | None
    status: int
    response_headers: Mapping[str, str]
    # The response's JSON body when it was recorded parsed (or when its text is JSON), else None.
    response_body: Any
    # The response as text when it was recorded raw (streams, HTML, plain text), else None.
    response_text: str | None

    @property
    def id(self) -> str:
        """A short test id: ``folder/file.yaml#index``."""
        return f"{self.path.parent.name}/{self.path.name}#{self.index}"

    @property
    def uri_path(self) -> str:
        """The URI's path without query or fragment (some recordings tag URIs with ``#stream``)."""
        return urlsplit(self.uri).path

    @property
    def is_stream(self) -> bool:
        """Whether the response is a stream (SSE or NDJSON) rather than one JSON document."""
        ctype = self.response_headers.get("content-type", "")
        if "event-stream" in ctype or "ndjson" in ctype:
            return True
        return self.response_body is None and self.response_text is not None and (
            self.response_text.lstrip().startswith("data:")
        )


def _headers(raw: Mapping[str, Any] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in (raw or {}).items():
        out[str(name).lower()] = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
    return out


def _json_or_none(text: str | None) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _interaction(path: Path, index: int, raw: Mapping[str, Any]) -> Interaction:
    req, resp = raw["request"], raw["response"]
    status = resp["status"]
    resp_text: str | None = None
    if "body" in resp:
        body = resp["body"]
        resp_text = body.get("string") if isinstance(body, Mapping) else body
        if isinstance(resp_text, bytes):
            resp_text = resp_text.decode("utf-8", errors="replace")
    resp_body = resp["parsed_body"] if "parsed_body" in resp else _json_or_none(resp_text)
    req_text = req.get("body")
    return Interaction(
        path=path,
        index=index,
        method=str(req.get("method", "POST")).upper(),
        uri=str(req["uri"]),
        request_headers=_headers(req.get("headers")),
        request_body=req["parsed_body"] if "parsed_body" in req else _json_or_none(req_text),
        request_text=req_text if isinstance(req_text, str) else None,
        status=int(status["code"] if isinstance(status, Mapping) else status),
        response_headers=_headers(resp.get("headers")),
        response_body=resp_body,
        response_text=resp_text,
    )


@functools.cache
def _load(path: Path) -> tuple[Interaction, ...]:
    with path.open("rb") as fh:
        doc = yaml.load(fh, Loader=_Loader) or {}
    return tuple(_interaction(path, i, it) for i, it in enumerate(doc.get("interactions") or ()))


def load_cassette(path: Path | str) -> list[Interaction]:
    """The interactions of one cassette, in recorded order (parsed once per test session)."""
    return list(_load(Path(path).resolve()))


def cassettes(wire_dir: Path, *folders: str) -> list[Path]:
    """The cassette files under the given provider folders, sorted (for parametrising by glob)."""
    if not wire_dir.is_dir():
        return []
    return sorted(p for folder in folders for p in (wire_dir / folder).glob("*.yaml") if p.is_file())


def body_lines(text: str | bytes) -> list[bytes]:
    """A recorded SSE/NDJSON body as the lines a transport would yield (no line endings)."""
    data = text.encode() if isinstance(text, str) else text
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return [line[:-1] if line.endswith(b"\r") else line for line in lines]
