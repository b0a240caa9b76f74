"""Fault specifications: what should go wrong with a simulated call, and how often.

A spec is a comma-separated list of ``key=value`` items; a bare item (or ``fault=``) names the kind.
The same text works in the ``x-sim-fault`` header, after a ``+`` in the model name (so a gateway
deployment can carry it) and in ``POST /_sim/faults``:

    >>> f = parse_fault("503,rate=0.3")
    >>> f.status, f.rate
    (503, 0.3)
    >>> split_model("sim-model+fault=drop,after=3,words=50")
    ('sim-model', {'fault': 'drop', 'after': '3', 'words': '50'})

Kinds: an HTTP status (``429``, ``500``, ``503``, ``529``, any 4xx/5xx, in the provider's own error
body; 429 adds ``Retry-After`` and the provider's reset headers), ``drop`` (the connection is cut
after ``after`` stream chunks, or halfway through a JSON body), ``malformed`` (chunk number ``after``
is invalid JSON), ``stall`` (``seconds`` of silence before chunk ``after``), ``html`` (a proxy's
HTML error page, status 502 unless given), ``empty`` (200 with an empty body or stream),
``latency`` (only delays). Delays combine with any kind: ``latency=MS`` before the headers and
``chunk_delay=MS`` between chunks. ``rate`` (0..1, default 1) makes the whole fault random, drawn from
the simulator's seedable RNG.
"""

from __future__ import annotations

from dataclasses import dataclass

KINDS = frozenset({"status", "drop", "malformed", "stall", "html", "empty", "latency"})
FAULT_KEYS = frozenset({"fault", "rate", "after", "seconds", "retry_after", "latency", "chunk_delay", "status"})


class FaultSpecError(ValueError):
    """A fault spec that cannot be understood; answered with a 400 in the provider's format."""


@dataclass(frozen=True, slots=True)
class Fault:
    kind: str = "latency"
    status: int | None = None
    rate: float = 1.0
    after: int = 1
    seconds: float = 2.0
    retry_after: float = 1.0
    latency_ms: float = 0.0
    chunk_delay_ms: float = 0.0

    @property
    def is_error_status(self) -> bool:
        return self.kind == "status"


def split_model(model: str) -> tuple[str, dict[str, str]]:
    """``"name+k=v,k2=v2"`` -> ``("name", {k: v, k2: v2})``; bare items become ``fault``."""
    base, sep, tail = model.partition("+")
    return base, (_items(tail) if sep else {})


def _items(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        if sep:
            out[key.strip().lower().replace("-", "_")] = value.strip()
        else:
            out["fault"] = key.strip().lower()
    return out


def parse_fault(text: str) -> Fault | None:
    """The fault in a spec string; ``None`` for ``""``/``"none"``."""
    return fault_from_items(_items(text))


def fault_from_items(items: dict[str, str]) -> Fault | None:
    keys = {k: v for k, v in items.items() if k in FAULT_KEYS}
    if not keys or keys.get("fault") in ("none", "off", "ok"):
        return None
    kind, status = _kind(keys.get("fault"), keys.get("status"))
    try:
        fault = Fault(
            kind=kind,
            status=status,
            rate=float(keys.get("rate", 1.0)),
            after=int(keys.get("after", 1)),
            seconds=float(keys.get("seconds", 2.0)),
            retry_after=float(keys.get("retry_after", 1.0)),
            latency_ms=float(keys.get("latency", 0.0)),
            chunk_delay_ms=float(keys.get("chunk_delay", 0.0)),
        )
    except ValueError as exc:
        raise FaultSpecError(f"bad number in fault spec {items!r}: {exc}") from None
    if not 0.0 <= fault.rate <= 1.0:
        raise FaultSpecError(f"fault rate must be between 0 and 1, got {fault.rate}")
    return fault


def _kind(name: str | None, status: str | None) -> tuple[str, int | None]:
    if name is None:
        return ("status", _status(status)) if status else ("latency", None)
    if name.isdigit():
        return "status", _status(name)
    if name not in KINDS:
        raise FaultSpecError(f"unknown fault kind {name!r}; use a status code or one of {sorted(KINDS)}")
    if name == "html":
        return name, _status(status or "502")
    return name, (_status(status) if status else None)


def _status(text: str | None) -> int:
    try:
        code = int(text or "")
    except ValueError:
        raise FaultSpecError(f"bad status {text!r} in fault spec") from None
    if not 400 <= code <= 599:
        raise FaultSpecError(f"fault status must be 4xx or 5xx, got {code}")
    return code
