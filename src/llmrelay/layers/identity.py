"""The identity layer (see llmrelay.pipeline.LAYERS for its place on the request path)."""

from __future__ import annotations

from ..pipeline import Handler
from ..services import Services


def build(services: Services, next: Handler) -> Handler | None:
    # Not built yet: the layer is left out of the pipeline.
    return None
