"""Charts per day (the portal's spend, the console's orders and claims) and per batch: plain
SVG drawn on the server (no script), with the same figures as a table beside each for screen
readers and for anyone who prefers numbers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from codeshelf.kit.money import Money

DAYS = 30
WIDTH, HEIGHT, GAP = 600, 120, 2


@dataclass(frozen=True)
class Bar:
    day: date
    spent: Money
    x: int
    y: int
    width: int
    height: int


def bars(spend: dict[date, Money], currency: str, today: date) -> list[Bar]:
    """One bar per day of the last DAYS days up to ``today`` (zero days included)."""
    days = [today - timedelta(days=back) for back in range(DAYS - 1, -1, -1)]
    amounts = [spend.get(day, Money(0, currency)) for day in days]
    top = max((amount.minor for amount in amounts), default=0) or 1
    width = WIDTH // DAYS
    drawn = []
    for index, (day, amount) in enumerate(zip(days, amounts, strict=True)):
        height = round(HEIGHT * amount.minor / top)
        drawn.append(Bar(day, amount, index * width, HEIGHT - height, width - GAP, height))
    return drawn


@dataclass(frozen=True)
class CountBar:
    day: date
    count: int
    x: int
    y: int
    width: int
    height: int


def count_bars(per_day: dict[date, int], today: date) -> list[CountBar]:
    """One bar per day of the last DAYS days up to ``today`` (zero days included)."""
    days = [today - timedelta(days=back) for back in range(DAYS - 1, -1, -1)]
    top = max((per_day.get(day, 0) for day in days), default=0) or 1
    width = WIDTH // DAYS
    drawn = []
    for index, day in enumerate(days):
        count = per_day.get(day, 0)
        height = round(HEIGHT * count / top)
        drawn.append(CountBar(day, count, index * width, HEIGHT - height, width - GAP, height))
    return drawn
