"""Daily reconciliation (seed 003: "run daily reconciliation by order ID and currency").

A day is a UTC calendar day. For each currency a partner's wallet moved in, the figures add up
by construction: ``closing = opening + deposits + order_debits + holds + releases + refunds``.
``held_*`` are the money set aside for pending orders; ``captured`` is what holds paid for
delivered orders that day. The operator's ``mismatches`` cross-check the day's ledger against
its orders, delivered codes and imported stock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from codeshelf.kit.money import Money
from codeshelf.orders.models import DELIVERED, FAILED, PENDING, Order, OrderItem
from codeshelf.partners.models import Partner
from codeshelf.stock.models import Batch, Code
from codeshelf.wallet.models import (
    DEPOSIT,
    HELD,
    HOLD,
    ORDER,
    REFUND,
    RELEASE,
    WALLET,
    Account,
    LedgerTransaction,
    Posting,
)

# Wallet movements by ledger transaction kind, in report order.
MOVEMENTS = {
    DEPOSIT: "deposits",
    ORDER: "order_debits",
    HOLD: "holds",
    RELEASE: "releases",
    REFUND: "refunds",
}


@dataclass
class CurrencyFigures:
    currency: str
    opening: int = 0
    deposits: int = 0
    order_debits: int = 0  # negative: orders paid straight from the wallet
    holds: int = 0  # negative: money set aside for pending orders
    releases: int = 0  # positive: holds given back when pending orders failed
    refunds: int = 0  # positive: claims refunded
    closing: int = 0
    held_opening: int = 0
    captured: int = 0  # negative: holds that paid for orders delivered this day
    held_closing: int = 0

    def money(self) -> dict[str, Money]:
        names = (
            "opening",
            *MOVEMENTS.values(),
            "closing",
            "held_opening",
            "captured",
            "held_closing",
        )
        return {name: Money(getattr(self, name), self.currency) for name in names}


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
    return DailyReport(
        day,
        _figures(session, [partner_id], start, end),
        _orders(session, partner_id, start, end),
    )


def _figures(
    session: Session, partner_ids: list[int], start: datetime, end: datetime
) -> list[CurrencyFigures]:
    owned = (Account.partner_id.in_(partner_ids), Account.kind.in_((WALLET, HELD)))
    figures: dict[str, CurrencyFigures] = {}

    def of(currency: str) -> CurrencyFigures:
        return figures.setdefault(currency, CurrencyFigures(currency))

    before = session.execute(
        select(Account.currency, Account.kind, func.sum(Posting.amount_minor))
        .join(Posting, Posting.account_id == Account.id)
        .where(*owned, Posting.created_at < start)
        .group_by(Account.currency, Account.kind)
    )
    for currency, kind, total in before:
        if kind == WALLET:
            of(currency).opening = int(total)
        else:
            of(currency).held_opening = int(total)
    during = session.execute(
        select(
            Account.currency, Account.kind, LedgerTransaction.kind, func.sum(Posting.amount_minor)
        )
        .join(Posting, Posting.account_id == Account.id)
        .join(LedgerTransaction, LedgerTransaction.id == Posting.transaction_id)
        .where(*owned, Posting.created_at >= start, Posting.created_at < end)
        .group_by(Account.currency, Account.kind, LedgerTransaction.kind)
    )
    for currency, account_kind, txn_kind, total in during:
        line = of(currency)
        if account_kind == WALLET:
            name = MOVEMENTS[txn_kind]
            setattr(line, name, getattr(line, name) + int(total))
        elif txn_kind == ORDER:
            line.captured += int(total)
    for line in figures.values():
        line.closing = line.opening + sum(getattr(line, name) for name in MOVEMENTS.values())
        line.held_closing = line.held_opening + _held_movement(
            session, partner_ids, line, start, end
        )
    return sorted(figures.values(), key=lambda line: line.currency)


def _held_movement(
    session: Session, partner_ids: list[int], line: CurrencyFigures, start: datetime, end: datetime
) -> int:
    total = session.scalar(
        select(func.coalesce(func.sum(Posting.amount_minor), 0))
        .join(Account, Account.id == Posting.account_id)
        .where(
            Account.partner_id.in_(partner_ids),
            Account.kind == HELD,
            Account.currency == line.currency,
            Posting.created_at >= start,
            Posting.created_at < end,
        )
    )
    return int(total or 0)


def _orders(session: Session, partner_id: int, start: datetime, end: datetime) -> list[OrderLine]:
    """Orders created this day, and older orders whose money moved this day."""
    moved = select(LedgerTransaction.order_id).where(
        LedgerTransaction.created_at >= start,
        LedgerTransaction.created_at < end,
        LedgerTransaction.order_id.is_not(None),
    )
    rows = session.scalars(
        select(Order)
        .where(
            Order.partner_id == partner_id,
            or_(
                (Order.created_at >= start) & (Order.created_at < end),
                Order.id.in_(moved),
            ),
        )
        .order_by(Order.id)
    )
    return [
        OrderLine(
            order.public_id,
            order.client_order_id,
            order.status,
            Money(order.total_minor, order.currency),
            order.created_at,
        )
        for order in rows
    ]


@dataclass(frozen=True)
class PartnerFigures:
    partner_id: str
    name: str
    currencies: list[CurrencyFigures]


def operator_day(session: Session, day: date) -> tuple[list[PartnerFigures], list[str]]:
    """Every live partner's figures for ``day``, and each mismatch between the day's ledger,
    orders, delivered codes and imported stock."""
    start, end = bounds(day)
    partners = session.scalars(
        select(Partner).where(Partner.sandbox_of_id.is_(None)).order_by(Partner.id)
    )
    figures = [
        PartnerFigures(p.public_id, p.name, lines)
        for p in partners
        if (lines := _figures(session, [p.id], start, end))
    ]
    return figures, mismatches(session, start, end)


def mismatches(session: Session, start: datetime, end: datetime) -> list[str]:
    return (
        _unbalanced(session, start, end)
        + _payments_without_delivery(session, start, end)
        + _deliveries_without_payment(session, start, end)
        + _codes_against_orders(session, start, end)
        + _imports_against_batches(session, start, end)
    )


def _unbalanced(session: Session, start: datetime, end: datetime) -> list[str]:
    rows = session.execute(
        select(LedgerTransaction.public_id, func.sum(Posting.amount_minor))
        .join(Posting, Posting.transaction_id == LedgerTransaction.id)
        .where(LedgerTransaction.created_at >= start, LedgerTransaction.created_at < end)
        .group_by(LedgerTransaction.id, LedgerTransaction.public_id)
        .having(func.sum(Posting.amount_minor) != 0)
    )
    return [f"ledger transaction {txn} sums to {total}, not 0" for txn, total in rows]


def _payments_without_delivery(session: Session, start: datetime, end: datetime) -> list[str]:
    """Each order payment, hold or release of the day against its order's status."""
    expected = {ORDER: (DELIVERED,), HOLD: (PENDING, DELIVERED, FAILED), RELEASE: (FAILED,)}
    rows = session.execute(
        select(LedgerTransaction.public_id, LedgerTransaction.kind, Order.public_id, Order.status)
        .outerjoin(Order, Order.id == LedgerTransaction.order_id)
        .where(
            LedgerTransaction.kind.in_(tuple(expected)),
            LedgerTransaction.created_at >= start,
            LedgerTransaction.created_at < end,
        )
    )
    problems = []
    for txn, kind, order_id, status in rows:
        if order_id is None:
            problems.append(f"{kind} {txn} points to no order")
        elif status not in expected[kind]:
            problems.append(f"{kind} {txn} for order {order_id}, which is {status}")
    return problems


def _deliveries_without_payment(session: Session, start: datetime, end: datetime) -> list[str]:
    """Purchases delivered this day whose payment is not exactly their total."""
    paid = (
        select(LedgerTransaction.order_id, func.sum(Posting.amount_minor).label("paid"))
        .join(Posting, Posting.transaction_id == LedgerTransaction.id)
        .join(Account, Account.id == Posting.account_id)
        .where(LedgerTransaction.kind == ORDER, Account.partner_id.is_(None))
        .group_by(LedgerTransaction.order_id)
        .subquery()
    )
    rows = session.execute(
        select(Order.public_id, Order.total_minor, paid.c.paid)
        .outerjoin(paid, paid.c.order_id == Order.id)
        .where(
            Order.status == DELIVERED,
            Order.total_minor > 0,
            Order.delivered_at >= start,
            Order.delivered_at < end,
        )
    )
    return [
        f"order {order_id} was delivered for {total} but {paid or 0} was paid"
        for order_id, total, paid in rows
        if (paid or 0) != total
    ]


def _codes_against_orders(session: Session, start: datetime, end: datetime) -> list[str]:
    """Codes delivered this day against the quantities of the live orders delivered this day."""
    delivered = (
        select(Code.order_item_id, func.count().label("codes"))
        .where(Code.delivered_at >= start, Code.delivered_at < end)
        .group_by(Code.order_item_id)
        .subquery()
    )
    rows = session.execute(
        select(Order.public_id, OrderItem.quantity, delivered.c.codes)
        .join(OrderItem, OrderItem.order_id == Order.id)
        .join(Partner, Partner.id == Order.partner_id)
        .outerjoin(delivered, delivered.c.order_item_id == OrderItem.id)
        .where(
            Order.status == DELIVERED,
            Order.delivered_at >= start,
            Order.delivered_at < end,
            Partner.sandbox_of_id.is_(None),
        )
    )
    problems = [
        f"order {order_id}: {quantity} codes ordered, {codes or 0} delivered that day"
        for order_id, quantity, codes in rows
        if (codes or 0) != quantity
    ]
    strays = session.scalar(
        select(func.count())
        .select_from(Code)
        .outerjoin(OrderItem, OrderItem.id == Code.order_item_id)
        .where(Code.delivered_at >= start, Code.delivered_at < end, OrderItem.id.is_(None))
    )
    if strays:
        problems.append(f"{strays} codes were delivered that day to no order")
    misplaced = session.execute(
        select(Order.public_id, Order.status, func.count(Code.id))
        .select_from(Code)
        .join(OrderItem, OrderItem.id == Code.order_item_id)
        .join(Order, Order.id == OrderItem.order_id)
        .where(
            Code.delivered_at >= start,
            Code.delivered_at < end,
            or_(Order.status != DELIVERED, Order.delivered_at < start, Order.delivered_at >= end),
        )
        .group_by(Order.public_id, Order.status)
    )
    problems += [
        f"{codes} codes were delivered that day to order {order_id}, which is {status}"
        for order_id, status, codes in misplaced
    ]
    return problems


def _imports_against_batches(session: Session, start: datetime, end: datetime) -> list[str]:
    rows = session.execute(
        select(Batch.reference, Batch.code_count, func.count(Code.id))
        .outerjoin(Code, Code.batch_id == Batch.id)
        .where(Batch.imported_at >= start, Batch.imported_at < end)
        .group_by(Batch.id, Batch.reference, Batch.code_count)
    )
    return [
        f"batch {reference} imported {expected} codes but {stored} are stored"
        for reference, expected, stored in rows
        if expected != stored
    ]
