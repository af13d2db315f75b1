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


RATE_ROW, RATE_LABEL = 22, 220  # a row per batch; room for its reference on the left


@dataclass(frozen=True)
class RateBar:
    label: str
    rate: float
    y: int
    width: int
    bad: bool  # at least twice the batches' mean rate, and above 1 %


def rate_bars(rates: list[tuple[str, float]]) -> list[RateBar]:
    """A horizontal bar per batch, as long as its claim rate next to the highest; the ones far
    above the rest drawn in red, so a bad batch stands out at a glance."""
    top = max((rate for _, rate in rates), default=0.0) or 1.0
    typical = sum(rate for _, rate in rates) / len(rates) if rates else 0.0
    length = WIDTH - RATE_LABEL - 60  # room for the figure after the longest bar
    return [
        RateBar(label, rate, index * RATE_ROW, round(length * rate / top), _bad(rate, typical))
        for index, (label, rate) in enumerate(rates)
    ]


def _bad(rate: float, typical: float) -> bool:
    return rate > 0.01 and rate >= 2 * typical
