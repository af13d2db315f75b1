"""Daily reconciliation (seed 003: "run daily reconciliation by order ID and currency").

A day is a UTC calendar day. For each currency a partner's wallet moved in, the figures add up
by construction (the wallet's ``day_figures``); the orders are those created that day and those
whose money moved that day. The operator's ``mismatches`` are the invariants' day checks: the
day's ledger against its orders, delivered codes and imported stock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy.orm import Session

from codeshelf import invariants
from codeshelf.kit.money import Money
from codeshelf.orders import service as orders
from codeshelf.partners import service as partners
from codeshelf.wallet import service as wallet
from codeshelf.wallet.service import CurrencyFigures


@dataclass(frozen=True)
class OrderLine:
    order_id: str
    client_order_id: str | None
    status: str
    amount: Money
    created_at: datetime


@dataclass
class DailyReport:
    day: date
    currencies: list[CurrencyFigures]
    orders: list[OrderLine]
    mismatches: list[str] = field(default_factory=list)


def bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time.min, tzinfo=UTC)
    if day == date.max:  # no next midnight to stop before
        return start, datetime.max.replace(tzinfo=UTC)
    return start, start + timedelta(days=1)


def partner_day(session: Session, partner_id: int, day: date) -> DailyReport:
    """One partner's figures per currency for ``day``, and the orders the day touched."""
    start, end = bounds(day)
    touched = orders.orders_of_the_day(
        session, partner_id, start, end, wallet.orders_moved(start, end)
    )
    return DailyReport(
        day,
        wallet.day_figures(session, [partner_id], start, end),
        [
            OrderLine(
                order.public_id,
                order.client_order_id,
                order.status,
                orders.total_of(order),
                order.created_at,
            )
            for order in touched
        ],
    )


@dataclass(frozen=True)
class PartnerFigures:
    partner_id: str
    name: str
    currencies: list[CurrencyFigures]


def operator_day(session: Session, day: date) -> tuple[list[PartnerFigures], list[str]]:
    """Every live partner's figures for ``day``, and each mismatch between the day's ledger,
    orders, delivered codes and imported stock."""
    start, end = bounds(day)
    figures = [
        PartnerFigures(p.public_id, p.name, lines)
        for p in partners.live_partners(session)
        if (lines := wallet.day_figures(session, [p.id], start, end))
    ]
    return figures, mismatches(session, start, end)


def mismatches(session: Session, start: datetime, end: datetime) -> list[str]:
    return invariants.check_day(session, invariants.Window(start, end))
