"""Time: timezone-aware UTC now, and business days that skip weekends and holidays (SLA clocks)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, date, datetime, timedelta

SATURDAY = 5


def utcnow() -> datetime:
    """Now, timezone-aware UTC: the only clock the platform reads."""
    return datetime.now(UTC)


def is_business_day(day: date, holidays: Collection[date]) -> bool:
    return day.weekday() < SATURDAY and day not in holidays


def add_business_days(start: datetime, days: int, holidays: Collection[date]) -> datetime:
    """The same time of day ``days`` business days after ``start`` (UTC calendar days).

    Starting on a weekend or holiday counts from the next business day, so two business days
    from a Saturday noon is Tuesday noon.
    """
    moment = start
    remaining = days
    while remaining > 0:
        moment += timedelta(days=1)
        if is_business_day(moment.date(), holidays):
            remaining -= 1
    return moment


def parse_holidays(raw: str) -> frozenset[date]:
    """``2026-12-25,2027-01-01`` -> dates; raises ValueError naming a bad entry."""
    days = set()
    for part in raw.split(","):
        text = part.strip()
        if not text:
            continue
        try:
            days.add(date.fromisoformat(text))
        except ValueError:
            raise ValueError(f"holiday {text!r} is not a date like 2026-12-25") from None
    return frozenset(days)
