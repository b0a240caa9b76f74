"""Wire-faithful fake upstreams for every provider, with fault injection.

One ASGI app serves OpenAI (``/openai/v1/...``), Anthropic (``/anthropic/v1/...``), Gemini
(``/gemini/v1beta/...``) and Ollama (``/ollama/api/...``). Answers are deterministic; their length,
tool calls and faults are chosen per request with ``x-sim-*`` headers or a model-name suffix
(``sim-model+words=200,chunks=20,fault=503,rate=0.3``), or per route with ``POST /_sim/faults``.
``GET /_sim/stats`` counts the calls. This package imports nothing from llmrelay but the wire codecs.

    >>> from llmrelay.simulator import serve_in_thread
    >>> with serve_in_thread() as url:
    ...     url.startswith("http://127.0.0.1:")
    True
"""

from __future__ import annotations

from typing import Any

from ._app import Simulator
from .server import run, serve_in_thread


def app(**kwargs: Any) -> Simulator:
    """The ASGI app factory (``uvicorn --factory llmrelay.simulator:app``); see :class:`Simulator`."""
    return Simulator(**kwargs)


__all__ = ["Simulator", "app", "run", "serve_in_thread"]
