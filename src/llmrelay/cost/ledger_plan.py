"""Which roll-up rows answer a whole-day window: the whole months inside it, plus the edge days.

Day labels (``YYYY-MM-DD``) are already in the configured zone, and a month label is a day
label's first seven characters, so the split is plain calendar arithmetic on labels:

    >>> cover_days("2025-10-04", "2026-01-01")
    Cover(months=('2025-11', '2025-12'), days=(('2025-10-04', '2025-10-31'), ('2026-01-01', '2026-01-01')))
    >>> cover_days("2025-10-04", "2025-10-20")
    Cover(months=None, days=(('2025-10-04', '2025-10-20'),))

Every day of the window is in exactly one part: the months (inclusive range of month labels) or
one of the day ranges (inclusive). Adding the parts' rows is therefore the window's total.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta


@dataclass(frozen=True, slots=True)
class Cover:
    months: tuple[str, str] | None
    days: tuple[tuple[str, str], ...]


def _next_month(d: date) -> date:
    return (d.replace(day=1) + timedelta(days=32)).replace(day=1)


def cover_days(first: str, last: str) -> Cover:
    """Split the inclusive day window ``first..last`` into whole months and edge day ranges.

    Labels that are not ISO dates (or an empty window) are left to the daily rows as they are."""
    try:
        a, b = date.fromisoformat(first), date.fromisoformat(last)
    except ValueError:
        return Cover(None, ((first, last),))
    if a > b:
        return Cover(None, ((first, last),))
    start = a if a.day == 1 else _next_month(a)      # the first whole month's first day
    end = _next_month(b) if b + timedelta(days=1) == _next_month(b) else b.replace(day=1)  # after the last
    if start >= end:
        return Cover(None, ((first, last),))
    head = ((first, (start - timedelta(days=1)).isoformat()),) if a < start else ()
    tail = ((end.isoformat(), last),) if end <= b else ()
    last_month = (end - timedelta(days=1)).isoformat()[:7]
    return Cover((start.isoformat()[:7], last_month), head + tail)
