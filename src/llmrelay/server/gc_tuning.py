"""Garbage-collector settings for a gateway process (``server.gc_freeze``, ``server.gc_gen0_threshold``).

CPython's cyclic collector runs a young-generation pass every 700 net new container objects and,
every so often, a full pass over every object the process holds. A gateway holds a large start-up
heap (imported modules, the settings, compiled detectors and pricing tables) that never becomes
garbage, and each full pass walks all of it again; and a request's own objects live for
hundreds of microseconds, long enough to be caught by a young pass at 700 and promoted, then
walked again by the older passes. Two standard server settings (as in Instagram's write-up):

- ``gc.freeze()`` once start-up is done: the start-up heap moves to the permanent generation,
  which no collection walks again (it is never freed; it was never going to be).
- a higher young-generation threshold: fewer young passes, and most of a request's objects are
  freed by reference counting before a pass can promote them.

Only the process that serves applies them (``llmrelay serve`` and its workers): a library user's
process keeps its own collector settings. Reference cycles are still collected either way.

    >>> from llmrelay.config import ServerConfig
    >>> tune_gc(ServerConfig(gc_freeze=False, gc_gen0_threshold=None), gc_module=FakeGC())
    False
"""

from __future__ import annotations

import gc
from typing import Any, Protocol


class _GC(Protocol):
    """The part of the :mod:`gc` module used here (a test passes a recording double)."""

    def collect(self) -> int: ...
    def freeze(self) -> None: ...
    def get_threshold(self) -> tuple[int, int, int]: ...
    def set_threshold(self, threshold0: int, threshold1: int = ..., threshold2: int = ...) -> None: ...


class FakeGC:
    """A :class:`_GC` that only records what it was asked to do (for tests and the docstring)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[int, ...]]] = []
        self.threshold = (700, 10, 10)

    def collect(self) -> int:
        self.calls.append(("collect", ()))
        return 0

    def freeze(self) -> None:
        self.calls.append(("freeze", ()))

    def get_threshold(self) -> tuple[int, int, int]:
        return self.threshold

    def set_threshold(self, threshold0: int, threshold1: int = 10, threshold2: int = 10) -> None:
        self.threshold = (threshold0, threshold1, threshold2)
        self.calls.append(("set_threshold", self.threshold))


def tune_gc(server: Any, gc_module: _GC | None = None) -> bool:
    """Apply ``server.gc_gen0_threshold`` and ``server.gc_freeze`` to this process, once its
    app is built; True when anything changed. Call it from the process that serves, never from
    library code."""
    g: _GC = gc_module if gc_module is not None else gc
    changed = False
    gen0 = getattr(server, "gc_gen0_threshold", None)
    if gen0:
        _, gen1, gen2 = g.get_threshold()
        g.set_threshold(int(gen0), gen1, gen2)
        changed = True
    if getattr(server, "gc_freeze", False):
        # Collect first: garbage made during start-up must not be frozen (it would never be freed).
        g.collect()
        g.freeze()
        changed = True
    return changed
