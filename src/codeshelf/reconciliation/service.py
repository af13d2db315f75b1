"""Daily reconciliation (seed 003: "run daily reconciliation by order ID and currency").

A day is a UTC calendar day. For each currency a partner's wallet moved in, the figures add up
by construction (the wallet's ``day_figures``); the orders are those created that day and those
whose money moved that day. The operator's day (``operator_day``) flags each partner's currency
line whose own cross-checks fail (running balances that do not chain, delivered orders not paid
exactly), beside the invariants' day checks across everyone: the day's ledger against its
orders, delivered codes and imported stock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy.orm import Session

from codeshelf import invariants
from codeshelf.kit import csvs
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
class OperatorLine:
    """One live partner's figures in one currency for the day, with this line's own
    cross-checks: the running balances its ledger recorded chain up, and the orders delivered
    that day cost what was paid for them (``problems`` empty: it agrees)."""

    partner_id: str
    name: str
    figures: CurrencyFigures
    delivered: Money  # what the partner's orders delivered that day cost
    problems: list[str]

    @property
    def currency(self) -> str:
        return self.figures.currency

    @property
    def mismatch(self) -> bool:
        return bool(self.problems)


@dataclass(frozen=True)
class OperatorDay:
    day: date
    lines: list[OperatorLine]  # by partner (oldest first), then currency
    mismatches: list[str]  # the day's cross-checks across everyone (``check_day``)

    @property
    def ok(self) -> bool:
        return not self.mismatches and not any(line.mismatch for line in self.lines)


def operator_day(session: Session, day: date) -> OperatorDay:
    """Every live partner's figures per currency for ``day``, each line cross-checked, and the
    day's ledger against its orders, delivered codes and imported stock."""
    start, end = bounds(day)
    lines = [
        line
        for partner in partners.live_partners(session)
        for line in _partner_lines(session, partner.id, partner.public_id, partner.name, start, end)
    ]
    return OperatorDay(day, lines, mismatches(session, start, end))


def _partner_lines(
    session: Session, partner_id: int, public_id: str, name: str, start: datetime, end: datetime
) -> list[OperatorLine]:
    figures = {f.currency: f for f in wallet.day_figures(session, [partner_id], start, end)}
    delivered = orders.delivered_totals(session, partner_id, start, end)
    breaks = wallet.balance_breaks(session, partner_id, start, end)
    lines = []
    for currency in sorted(figures.keys() | {c for c, total in delivered.items() if total}):
        line = figures.get(currency) or CurrencyFigures(currency)
        cost = Money(delivered.get(currency, 0), currency)
        paid = Money(-(line.order_debits + line.captured), currency)
        problems = [
            f"{b.kind} balance after {b.transaction_id} is recorded as {b.recorded}, "
            f"not {b.expected}"
            for b in breaks
            if b.expected.currency == currency
        ]
        if paid != cost:
            problems.append(f"orders delivered for {cost} but {paid} was paid for them")
        lines.append(OperatorLine(public_id, name, line, cost, problems))
    return lines


OPERATOR_CSV_COLUMNS = [
    "partner_id",
    "name",
    "currency",
    *wallet.FIGURES,
    "delivered",
    "mismatch",
    "problems",
]


def operator_csv(report: OperatorDay) -> str:
    """The day as one table, a row per partner and currency (amounts as exact decimals), then
    a row per cross-check across everyone that failed."""
    rows: list[list[object]] = [
        [
            line.partner_id,
            line.name,
            line.currency,
            *(money.amount for money in line.figures.money().values()),
            line.delivered.amount,
            "yes" if line.mismatch else "no",
            "; ".join(line.problems),
        ]
        for line in report.lines
    ]
    blank = [""] * (len(OPERATOR_CSV_COLUMNS) - 3)
    rows += [["", "", "", *blank, "yes", problem] for problem in report.mismatches]
    return csvs.table(OPERATOR_CSV_COLUMNS, rows, typed={"name"})


def mismatches(session: Session, start: datetime, end: datetime) -> list[str]:
    return invariants.check_day(session, invariants.Window(start, end))
