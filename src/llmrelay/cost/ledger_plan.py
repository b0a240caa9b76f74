"""Which roll-up rows answer a whole-day window: whole months, then whole weeks, then single days.

Day labels (``YYYY-MM-DD``) are already in the configured zone; a month label is a day label's
first seven characters and a week label is its Monday's day label (ISO weeks), so the split is plain
calendar arithmetic on labels. The whole months inside the window come first; in the edge pieces
left at both ends, the whole weeks inside each piece; the days left over last:

    >>> for part in cover_days("2025-10-04", "2026-01-01").parts: print(part)
    Part(grain='month', first='2025-11', last='2025-12')
    Part(grain='day', first='2025-10-04', last='2025-10-05')
    Part(grain='week', first='2025-10-06', last='2025-10-20')
    Part(grain='day', first='2025-10-27', last='2025-10-31')
    Part(grain='day', first='2026-01-01', last='2026-01-01')

Every day of the window is in exactly one part (ranges are inclusive), so adding the parts' rows
gives the window's totals exactly. A 90-day window is at most ~4 months, 8 weeks and 12 days,
instead of 90 days.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

_DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Part:
    grain: str   # "month", "week" or "day": which roll-up (and key column) to read
    first: str   # inclusive labels of that grain
    last: str


@dataclass(frozen=True, slots=True)
class Cover:
    parts: tuple[Part, ...]


def week_of(day: str) -> str:
    """The week label (its Monday's day label) of a day label."""
    d = date.fromisoformat(day)
    return (d - timedelta(days=d.weekday())).isoformat()


def _next_month(d: date) -> date:
    return (d.replace(day=1) + timedelta(days=32)).replace(day=1)


def _weeks(a: date, b: date) -> list[Part]:
    """The inclusive day range ``a..b`` as whole weeks inside it plus the days at both ends."""
    start = a + timedelta(days=-a.weekday() % 7)   # the first Monday on or after a
    end = b - timedelta(days=(b.weekday() + 1) % 7)  # the last Sunday on or before b
    if start > end:
        return [Part("day", a.isoformat(), b.isoformat())]
    out = [Part("day", a.isoformat(), (start - _DAY).isoformat())] if a < start else []
    out.append(Part("week", start.isoformat(), (end - timedelta(days=6)).isoformat()))
    if end < b:
        out.append(Part("day", (end + _DAY).isoformat(), b.isoformat()))
    return out


def cover_days(first: str, last: str, grains: tuple[str, ...] = ("month", "week")) -> Cover:
    """Split the inclusive day window ``first..last`` into parts of the coarsest ``grains``.

    Labels that are not ISO dates (or an empty window) are left to the daily rows as they are."""
    try:
        a, b = date.fromisoformat(first), date.fromisoformat(last)
    except ValueError:
        return Cover((Part("day", first, last),))
    if a > b:
        return Cover((Part("day", first, last),))
    edges = [(a, b)]
    parts: list[Part] = []
    start = a if a.day == 1 else _next_month(a)          # the first whole month's first day
    end = _next_month(b) if b + _DAY == _next_month(b) else b.replace(day=1)  # the day after the last
    if "month" in grains and start < end:
        parts.append(Part("month", start.isoformat()[:7], (end - _DAY).isoformat()[:7]))
        edges = [(x, y) for x, y in ((a, start - _DAY), (end, b)) if x <= y]
    for x, y in edges:
        parts += _weeks(x, y) if "week" in grains else [Part("day", x.isoformat(), y.isoformat())]
    return Cover(tuple(parts))
