"""Calendar periods (day, week, month, total) in a configured time zone.

Budgets and volume discounts reset at the start of a calendar period where the business is, not
at UTC midnight, so the boundaries are computed in ``pricing.timezone``:

    >>> p = period_of("month", 1_700_000_000.0, "UTC")
    >>> p.label, p.start < 1_700_000_000.0 < p.end
    ('2023-11', True)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

PeriodName = Literal["day", "week", "month", "total"]

# "total" never resets; its end is far enough away to be "never" for a TTL.
_FOREVER = 10 * 365 * 86400.0


@dataclass(frozen=True, slots=True)
class Period:
    name: str
    label: str
    start: float
    end: float

    def elapsed_fraction(self, now: float) -> float:
        if self.name == "total":
            return 1.0
        return min(1.0, max(0.0, (now - self.start) / (self.end - self.start)))


def period_of(name: str, now: float, tz: str = "UTC") -> Period:
    """The calendar period named ``name`` that contains the instant ``now``."""
    if name == "total":
        return Period("total", "total", 0.0, now + _FOREVER)
    zone = ZoneInfo(tz)
    local = datetime.fromtimestamp(now, zone)
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if name == "day":
        start, end, label = day, day + timedelta(days=1), day.strftime("%Y-%m-%d")
    elif name == "week":
        start = day - timedelta(days=day.weekday())
        end = start + timedelta(days=7)
        iso = start.isocalendar()
        label = f"{iso.year}-W{iso.week:02d}"
    elif name == "month":
        start = day.replace(day=1)
        end = (start + timedelta(days=32)).replace(day=1)
        label = start.strftime("%Y-%m")
    else:
        raise ValueError(f"unknown period {name!r}; use day, week, month or total")
    # Re-attach the zone so a DST change inside the period gives the right instants.
    return Period(name, label, _instant(start, zone), _instant(end, zone), )


def _instant(naive_local: datetime, zone: ZoneInfo) -> float:
    return naive_local.replace(tzinfo=None).replace(tzinfo=zone).timestamp()


def day_label(ts: float, tz: str = "UTC") -> str:
    return datetime.fromtimestamp(ts, ZoneInfo(tz)).strftime("%Y-%m-%d")
