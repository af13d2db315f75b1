"""Money is conserved: balanced transactions, wallets equal to their postings and never below
their credit line, every order's money where its status says, every refund owed by a claim."""

from __future__ import annotations

from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from codeshelf.claims.models import ClaimCode, Remedy, RemedyKind, RemedyState
from codeshelf.invariants.window import Window, within
from codeshelf.orders.models import Order, OrderItem, OrderStatus
from codeshelf.wallet.models import (
    Account,
    AccountKind,
    LedgerTransaction,
    Posting,
    TransactionKind,
)

ORDER_MOVES = (TransactionKind.ORDER, TransactionKind.HOLD, TransactionKind.RELEASE)


def unbalanced(session: Session, window: Window | None = None) -> list[str]:
    rows = session.execute(
        select(LedgerTransaction.public_id, func.sum(Posting.amount_minor))
        .join(Posting, Posting.transaction_id == LedgerTransaction.id)
        .where(within(window, LedgerTransaction.created_at))
        .group_by(LedgerTransaction.id, LedgerTransaction.public_id)
        .having(func.sum(Posting.amount_minor) != 0)
    )
    return [f"ledger transaction {txn} sums to {total}, not 0" for txn, total in rows]


def accounts(session: Session) -> list[str]:
    """One currency per transaction, every currency summing to zero, and each partner account
    (wallet or held) equal to its postings and not below its credit line."""
    mixed = session.execute(
        select(LedgerTransaction.public_id)
        .join(Posting, Posting.transaction_id == LedgerTransaction.id)
        .join(Account, Account.id == Posting.account_id)
        .where(Account.currency != LedgerTransaction.currency)
        .distinct()
    )
    problems = [f"transaction {txn} posts to an account of another currency" for (txn,) in mixed]
    totals = session.execute(
        select(Account.currency, func.sum(Posting.amount_minor))
        .join(Posting, Posting.account_id == Account.id)
        .group_by(Account.currency)
        .having(func.sum(Posting.amount_minor) != 0)
    )
    problems += [f"all {cur} postings sum to {total}, not 0" for cur, total in totals]
    wallets = session.execute(
        select(
            Account.code, Account.balance_minor, Account.credit_limit_minor, _posted_sum()
        ).where(Account.kind.in_((AccountKind.WALLET, AccountKind.HELD)))
    )
    for code, balance, credit, posted in wallets:
        if balance != posted:
            problems.append(f"{code}: balance {balance} but postings sum to {posted}")
        if balance + credit < 0:
            problems.append(f"{code}: balance {balance} is below its credit line")
    return problems


def _posted_sum() -> Any:
    return (
        select(func.coalesce(func.sum(Posting.amount_minor), 0))
        .where(Posting.account_id == Account.id)
        .correlate(Account)
        .scalar_subquery()
    )


def order_money(session: Session) -> list[str]:
    """Each order's money (paid, held or released) matches its status; no order move is
    without its order."""
    moved = (
        select(
            LedgerTransaction.order_id,
            func.sum(
                case((Account.kind == AccountKind.WALLET, Posting.amount_minor), else_=0)
            ).label("paid"),
            func.sum(case((Account.kind == AccountKind.HELD, Posting.amount_minor), else_=0)).label(
                "held"
            ),
        )
        .join(Posting, Posting.transaction_id == LedgerTransaction.id)
        .join(Account, Account.id == Posting.account_id)
        .where(LedgerTransaction.kind.in_(ORDER_MOVES))
        .group_by(LedgerTransaction.order_id)
        .subquery()
    )
    rows = session.execute(
        select(
            Order.public_id,
            Order.status,
            Order.hold_reason,
            Order.total_minor,
            moved.c.paid,
            moved.c.held,
        ).outerjoin(moved, moved.c.order_id == Order.id)
    )
    problems = []
    for order_id, status, hold_reason, total, paid, held in rows:
        expected = {
            OrderStatus.DELIVERED: (-total, 0),
            OrderStatus.FAILED: (0, 0),
            OrderStatus.PENDING: (-total, total) if hold_reason else (0, 0),
        }.get(status)
        actual = (paid or 0, held or 0)
        if expected is not None and actual != expected:
            problems.append(
                f"order {order_id} is {status} (total {total}) but its wallet moved {actual[0]} "
                f"and its hold holds {actual[1]}"
            )
    orphans = session.scalar(
        select(func.count())
        .select_from(LedgerTransaction)
        .outerjoin(Order, Order.id == LedgerTransaction.order_id)
        .where(LedgerTransaction.kind.in_(ORDER_MOVES), Order.id.is_(None))
    )
    if orphans:
        problems.append(f"{orphans} order debits point to no order")
    return problems


def payments_of_the_day(session: Session, window: Window) -> list[str]:
    """Each order payment, hold or release of the day against its order's status."""
    expected: dict[str, tuple[OrderStatus, ...]] = {
        TransactionKind.ORDER: (OrderStatus.DELIVERED,),
        TransactionKind.HOLD: (OrderStatus.PENDING, OrderStatus.DELIVERED, OrderStatus.FAILED),
        TransactionKind.RELEASE: (OrderStatus.FAILED,),
    }
    rows = session.execute(
        select(LedgerTransaction.public_id, LedgerTransaction.kind, Order.public_id, Order.status)
        .outerjoin(Order, Order.id == LedgerTransaction.order_id)
        .where(
            LedgerTransaction.kind.in_(tuple(expected)), window.holds(LedgerTransaction.created_at)
        )
    )
    problems = []
    for txn, kind, order_id, status in rows:
        if order_id is None:
            problems.append(f"{kind} {txn} points to no order")
        elif status not in expected[kind]:
            problems.append(f"{kind} {txn} for order {order_id}, which is {status}")
    return problems


def deliveries_of_the_day(session: Session, window: Window) -> list[str]:
    """Purchases delivered this day whose payment is not exactly their total."""
    paid = (
        select(LedgerTransaction.order_id, func.sum(Posting.amount_minor).label("paid"))
        .join(Posting, Posting.transaction_id == LedgerTransaction.id)
        .join(Account, Account.id == Posting.account_id)
        .where(LedgerTransaction.kind == TransactionKind.ORDER, Account.partner_id.is_(None))
        .group_by(LedgerTransaction.order_id)
        .subquery()
    )
    rows = session.execute(
        select(Order.public_id, Order.total_minor, paid.c.paid)
        .outerjoin(paid, paid.c.order_id == Order.id)
        .where(
            Order.status == OrderStatus.DELIVERED,
            Order.total_minor > 0,
            window.holds(Order.delivered_at),
        )
    )
    return [
        f"order {order_id} was delivered for {total} but {paid or 0} was paid"
        for order_id, total, paid in rows
        if (paid or 0) != total
    ]


def refunds(session: Session) -> list[str]:
    """Every refund points to its claim's remedy and equals what was paid for the code."""
    rows = session.execute(
        select(LedgerTransaction.public_id, Remedy.id)
        .outerjoin(Remedy, Remedy.ledger_transaction_id == LedgerTransaction.id)
        .where(LedgerTransaction.kind == TransactionKind.REFUND)
    )
    problems = [f"refund {txn} points to no claim" for txn, remedy in rows if remedy is None]
    overpaid = session.execute(
        select(Remedy.id, Remedy.amount_minor, OrderItem.unit_price_minor)
        .join(ClaimCode, ClaimCode.id == Remedy.claim_code_id)
        .join(OrderItem, OrderItem.id == ClaimCode.order_item_id)
        .where(Remedy.kind == RemedyKind.REFUND, Remedy.state == RemedyState.DONE)
    )
    problems += [
        f"remedy {remedy_id}: refunded {amount} but {paid} was paid"
        for remedy_id, amount, paid in overpaid
        if amount != paid
    ]
    credited_to_wallet = (
        select(func.coalesce(func.sum(Posting.amount_minor), 0))
        .join(Account, Account.id == Posting.account_id)
        .where(
            Posting.transaction_id == Remedy.ledger_transaction_id,
            Account.kind == AccountKind.WALLET,
        )
        .correlate(Remedy)
        .scalar_subquery()
    )
    posted = session.execute(
        select(Remedy.id, Remedy.amount_minor, credited_to_wallet).where(
            Remedy.ledger_transaction_id.is_not(None)
        )
    )
    problems += [
        f"remedy {remedy_id}: {amount} recorded but {credited} credited to the wallet"
        for remedy_id, amount, credited in posted
        if amount != credited
    ]
    return problems
