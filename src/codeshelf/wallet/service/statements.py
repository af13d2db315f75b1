"""Reading the ledger back: a partner's statement (wallet entries with the running balance),
and a day's figures per currency for reconciliation.

A day's figures add up by construction: ``closing = opening + deposits + order_debits + holds +
releases + refunds``. ``held_*`` are the money set aside for pending orders; ``captured`` is
what holds paid for orders delivered that day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session, aliased

from codeshelf.kit.db import as_day, utc_day
from codeshelf.kit.errors import InvalidCursorError
from codeshelf.kit.ids import is_public_id
from codeshelf.kit.money import Money
from codeshelf.wallet.models import (
    TRANSACTION_PREFIX,
    Account,
    AccountKind,
    LedgerTransaction,
    Posting,
    TransactionKind,
)


@dataclass(frozen=True)
class LedgerEntry:
    id: str  # the ledger transaction's public id
    kind: str
    amount: Money
    balance_after: Money
    reference: str | None
    order_id: int | None  # the order it paid, held or released, or the refund's order
    created_at: datetime


def ledger_entries(
    session: Session,
    partner_id: int,
    *,
    after: str | None,
    limit: int,
    currency: str | None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[LedgerEntry]:
    """The partner's wallet postings, oldest first, ``limit`` of them after the cursor (and,
    if given, posted from ``since`` and before ``until``).

    An entry is named by its ledger transaction's public id (each has one wallet posting), and
    the cursor is the last entry's id: nothing in either says how busy anyone else is.
    """
    own = (
        select(Posting, LedgerTransaction, Account.currency)
        .join(LedgerTransaction, LedgerTransaction.id == Posting.transaction_id)
        .join(Account, Account.id == Posting.account_id)
        .where(Account.partner_id == partner_id, Account.kind == AccountKind.WALLET)
    )
    query = own.order_by(Posting.id).limit(limit)
    if after is not None:
        if not is_public_id(TRANSACTION_PREFIX, after):
            raise InvalidCursorError()
        position = session.scalar(
            own.with_only_columns(Posting.id).where(LedgerTransaction.public_id == after)
        )
        if position is None:
            raise InvalidCursorError()
        query = query.where(Posting.id > position)
    if currency is not None:
        query = query.where(Account.currency == currency)
    if since is not None:
        query = query.where(Posting.created_at >= since)
    if until is not None:
        query = query.where(Posting.created_at < until)
    return [
        LedgerEntry(
            id=txn.public_id,
            kind=txn.kind,
            amount=Money(posting.amount_minor, cur),
            balance_after=Money(posting.balance_after_minor or 0, cur),
            reference=txn.reference,
            order_id=txn.order_id,
            created_at=posting.created_at,
        )
        for posting, txn, cur in session.execute(query)
    ]


# Wallet movements by ledger transaction kind, in report order.
MOVEMENTS: dict[str, str] = {
    TransactionKind.DEPOSIT: "deposits",
    TransactionKind.ORDER: "order_debits",
    TransactionKind.HOLD: "holds",
    TransactionKind.RELEASE: "releases",
    TransactionKind.REFUND: "refunds",
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
        return {name: Money(getattr(self, name), self.currency) for name in FIGURES}


# A currency's figures in report order.
FIGURES = (
    "opening",
    *MOVEMENTS.values(),
    "closing",
    "held_opening",
    "captured",
    "held_closing",
)


def day_figures(
    session: Session, partner_ids: list[int], start: datetime, end: datetime
) -> list[CurrencyFigures]:
    """The partners' wallet and held money per currency over [start, end)."""
    owned = (
        Account.partner_id.in_(partner_ids),
        Account.kind.in_((AccountKind.WALLET, AccountKind.HELD)),
    )
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
        if kind == AccountKind.WALLET:
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
        if account_kind == AccountKind.WALLET:
            name = MOVEMENTS[txn_kind]
            setattr(line, name, getattr(line, name) + int(total))
        elif txn_kind == TransactionKind.ORDER:
            line.captured += int(total)
    for line in figures.values():
        line.closing = line.opening + sum(getattr(line, name) for name in MOVEMENTS.values())
        line.held_closing = line.held_opening + _held_movement(
            session, partner_ids, line.currency, start, end
        )
    return sorted(figures.values(), key=lambda line: line.currency)


def _held_movement(
    session: Session, partner_ids: list[int], currency: str, start: datetime, end: datetime
) -> int:
    total = session.scalar(
        select(func.coalesce(func.sum(Posting.amount_minor), 0))
        .join(Account, Account.id == Posting.account_id)
        .where(
            Account.partner_id.in_(partner_ids),
            Account.kind == AccountKind.HELD,
            Account.currency == currency,
            Posting.created_at >= start,
            Posting.created_at < end,
        )
    )
    return int(total or 0)


@dataclass(frozen=True)
class BalanceBreak:
    """A posting whose recorded running balance is not the one before it plus its amount."""

    kind: str  # wallet or held
    transaction_id: str
    recorded: Money | None
    expected: Money


def balance_breaks(
    session: Session, partner_id: int, start: datetime, end: datetime
) -> list[BalanceBreak]:
    """The partner's wallet and held postings of [start, end) whose running balance breaks the
    chain: each must be the account's previous posting's (by posting order, the order the
    account's row lock let them in) plus its own amount. Amounts changed, postings removed or
    balances edited all show here."""
    earlier = aliased(Posting)
    previous = (
        select(earlier.balance_after_minor)
        .where(earlier.account_id == Posting.account_id, earlier.id < Posting.id)
        .order_by(earlier.id.desc())
        .limit(1)
        .correlate(Posting)
        .scalar_subquery()
    )
    expected = func.coalesce(previous, 0) + Posting.amount_minor
    rows = session.execute(
        select(
            Account.kind,
            Account.currency,
            LedgerTransaction.public_id,
            Posting.balance_after_minor,
            expected,
        )
        .join(Account, Account.id == Posting.account_id)
        .join(LedgerTransaction, LedgerTransaction.id == Posting.transaction_id)
        .where(
            Account.partner_id == partner_id,
            Account.kind.in_((AccountKind.WALLET, AccountKind.HELD)),
            Posting.created_at >= start,
            Posting.created_at < end,
            or_(Posting.balance_after_minor.is_(None), Posting.balance_after_minor != expected),
        )
        .order_by(Posting.id)
    )
    return [
        BalanceBreak(
            kind,
            txn,
            None if recorded is None else Money(recorded, currency),
            Money(int(should), currency),
        )
        for kind, currency, txn, recorded, should in rows
    ]


def orders_moved(start: datetime, end: datetime) -> Select[int | None]:
    """The ids of the orders whose money moved in [start, end), as a subquery to filter by."""
    return select(LedgerTransaction.order_id).where(
        LedgerTransaction.created_at >= start,
        LedgerTransaction.created_at < end,
        LedgerTransaction.order_id.is_not(None),
    )


def spend_per_day(
    session: Session, partner_id: int, since: datetime
) -> dict[str, dict[date, Money]]:
    """What the partner's orders took from its wallets each day (UTC) since ``since``, by
    currency: order debits and holds spent, less nothing (refunds are not spend)."""
    day = utc_day(session, Posting.created_at)
    rows = session.execute(
        select(day, Account.currency, func.sum(Posting.amount_minor))
        .join(LedgerTransaction, LedgerTransaction.id == Posting.transaction_id)
        .join(Account, Account.id == Posting.account_id)
        .where(
            Account.partner_id == partner_id,
            Account.kind.in_((AccountKind.WALLET, AccountKind.HELD)),
            LedgerTransaction.kind == TransactionKind.ORDER,
            Posting.created_at >= since,
        )
        .group_by(day, Account.currency)
    )
    found: dict[str, dict[date, Money]] = {}
    for when, currency, minor in rows:
        found.setdefault(currency, {})[as_day(when)] = Money(-int(minor), currency)
    return found
