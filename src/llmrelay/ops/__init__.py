"""Operations: hot-reloaded config, structured logs, tracing.

Nothing here is on the hot path unless switched on: the request wrapper (:func:`instrument`) logs
errors always, access lines when ``logging.access_log`` is set, and opens spans only when
``tracing.enabled`` is set.
"""

from .instrument import instrument

__all__ = ["instrument"]
