"""The wallet: a double-entry ledger in integer minor units.

Each partner has one wallet account per currency. A deposit moves money from the currency's
funding account into a wallet; an order debit moves it from the wallet to sales. Every ledger
transaction's postings sum to zero. Wallet balances are kept on the account row and changed with a
single conditional UPDATE, so concurrent orders can never take a wallet below zero. The system
accounts (funding, sales) keep no running balance: a hot row every order had to lock would
serialize all orders. Their balances are the sum of their postings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from codeshelf.audit import service as audit
from codeshelf.kit.clock import utcnow
from codeshelf.kit.db import table_of
from codeshelf.kit.errors import ConflictError, DomainError, InvalidCursorError, InvalidInputError
from codeshelf.kit.ids import public_id
from codeshelf.kit.money import Money
from codeshelf.orders.models import Order
from codeshelf.partners.models import Partner
from codeshelf.wallet.models import (
    DEPOSIT,
    FUNDING,
    HELD,
    HOLD,
    ORDER,
    REFUND,
    RELEASE,
    SALES,
    WALLET,
    Account,
    LedgerTransaction,
    Posting,
)
from codeshelf.webhooks import service as webhooks

TRANSACTION_ID = re.compile(r"txn_[0-9a-f]{20}")


class InsufficientFundsError(DomainError):
    slug = "insufficient-funds"
    business_refusal = True


class DepositConflictError(ConflictError):
    slug = "deposit-reference-conflict"


def _account_code(kind: str, currency: str, partner: Partner | None) -> str:
    return f"{kind}:{partner.public_id}:{currency}" if partner else f"{kind}:{currency}"


def _system_code(kind: str, currency: str, partner: Partner) -> str:
    """Funding or sales for this partner's money: sandbox money never meets live money."""
    return f"{kind}:test:{currency}" if partner.is_sandbox else f"{kind}:{currency}"


def system_account(session: Session, kind: str, currency: str, partner: Partner) -> Account:
    return _account_by_code(session, _system_code(kind, currency, partner), kind, currency, None)


def account(session: Session, kind: str, currency: str, partner: Partner | None = None) -> Account:
    """The account, created on first use (safe when two transactions race to create it)."""
    return _account_by_code(
        session, _account_code(kind, currency, partner), kind, currency, partner
    )


def _account_by_code(
    session: Session, code: str, kind: str, currency: str, partner: Partner | None
) -> Account:
    found = session.scalar(select(Account).where(Account.code == code))
    if found is not None:
        return found
    try:
        with session.begin_nested():
            created = Account(
                code=code,
                kind=kind,
                currency=currency,
                partner_id=partner.id if partner else None,
                balance_minor=0,
            )
            session.add(created)
        return created
    except IntegrityError:
        return session.scalars(select(Account).where(Account.code == code)).one()


def _post(
    session: Session,
    txn: LedgerTransaction,
    acct: Account,
    amount: int,
    balance_after: int | None,
) -> None:
    session.add(
        Posting(
            transaction_id=txn.id,
            account_id=acct.id,
            amount_minor=amount,
            balance_after_minor=balance_after,
            created_at=txn.created_at,  # one time per transaction: the same day for reconciliation
        )
    )


# Built once: it runs for every order, and building statements costs more than running them.
_MOVE_WALLET = (
    update(table_of(Account))
    .where(
        Account.code == bindparam("b_wallet_code"),
        Account.balance_minor + Account.credit_limit_minor + bindparam("b_amount") >= 0,
    )
    .values(balance_minor=Account.balance_minor + bindparam("b_amount"))
    .returning(Account.id, Account.balance_minor, Account.low_balance_minor)
)


def _move_wallet(session: Session, wallet_code: str, amount: int) -> tuple[int, int] | None:
    """Add ``amount`` (negative to debit) to a wallet (or a held account) unless that would
    overdraw it. Returns the account's id and new balance, or None when refused.

    A debit that takes a wallet below its low-balance alert emits ``balance.low``.
    """
    row = session.execute(_MOVE_WALLET, {"b_wallet_code": wallet_code, "b_amount": amount}).first()
    if row is None:
        return None
    account_id, balance, alert_below = row
    if alert_below is not None and balance < alert_below <= balance - amount:
        _emit_balance_low(session, account_id, balance, alert_below)
    return account_id, balance


def _emit_balance_low(session: Session, account_id: int, balance: int, alert_below: int) -> None:
    acct = session.get(Account, account_id)
    assert acct is not None and acct.partner_id is not None
    webhooks.emit(
        session,
        acct.partner_id,
        "balance.low",
        {
            "balance": Money(balance, acct.currency).as_json(),
            "alert_below": Money(alert_below, acct.currency).as_json(),
        },
    )


@dataclass(frozen=True)
class DepositResult:
    transaction: LedgerTransaction
    created: bool
    balance: Money


def deposit(
    session: Session,
    partner: Partner,
    money: Money,
    reference: str,
    actor: str = audit.OPERATOR_CLI,
) -> DepositResult:
    """Credit a wallet; idempotent on ``reference`` (the same deposit twice credits once)."""
    reference = reference.strip()
    if not reference or len(reference) > 128:
        raise InvalidInputError("a deposit reference of 1 to 128 characters is required")
    if money.minor <= 0:
        raise InvalidInputError("a deposit must be positive")
    wallet = account(session, WALLET, money.currency, partner)
    existing = _deposit_by_reference(session, reference)
    if existing is not None:
        return _replayed_deposit(session, existing, wallet, money)
    txn = LedgerTransaction(
        public_id=public_id("txn"),
        kind=DEPOSIT,
        currency=money.currency,
        reference=reference,
        created_at=utcnow(),
    )
    try:
        with session.begin_nested():
            session.add(txn)
    except IntegrityError:
        # The same reference deposited at this very moment by someone else: theirs counts.
        existing = _deposit_by_reference(session, reference)
        assert existing is not None  # the insert just collided with it
        return _replayed_deposit(session, existing, wallet, money)
    funding = system_account(session, FUNDING, money.currency, partner)
    moved = _move_wallet(session, wallet.code, money.minor)
    assert moved is not None  # a credit cannot overdraw
    balance = moved[1]
    _post(session, txn, wallet, money.minor, balance)
    _post(session, txn, funding, -money.minor, None)
    audit.record(
        session,
        actor=actor,
        action="wallet.deposit",
        partner_public_id=partner.public_id,
        subject=reference,
        details=money.as_json(),
    )
    return DepositResult(txn, True, Money(balance, money.currency))


def _deposit_by_reference(session: Session, reference: str) -> LedgerTransaction | None:
    return session.scalar(select(LedgerTransaction).where(LedgerTransaction.reference == reference))


def _replayed_deposit(
    session: Session, existing: LedgerTransaction, wallet: Account, money: Money
) -> DepositResult:
    credited = session.scalar(
        select(Posting.amount_minor).where(
            Posting.transaction_id == existing.id, Posting.account_id == wallet.id
        )
    )
    if existing.kind != DEPOSIT or credited != money.minor:
        raise DepositConflictError(
            f"reference {existing.reference} was already used for a different deposit"
        )
    session.refresh(wallet)
    return DepositResult(existing, False, Money(wallet.balance_minor, wallet.currency))


_ACCOUNT_ID = select(Account.id).where(Account.code == bindparam("b_code"))
_INSERT_ORDER_TRANSACTION = insert(table_of(LedgerTransaction)).returning(
    table_of(LedgerTransaction).c.id
)
_INSERT_POSTINGS = insert(table_of(Posting))


def debit_for_order(
    session: Session, partner: Partner, order_id: int, total: Money, now: datetime | None = None
) -> None:
    """Move an order's total from the wallet to sales, or raise InsufficientFundsError.

    The wallet row is locked from its UPDATE to the commit, so the caller should debit last.
    """
    sales_code = _system_code(SALES, total.currency, partner)
    sales_id = session.execute(_ACCOUNT_ID, {"b_code": sales_code}).scalar()
    if sales_id is None:  # the first order in this currency
        sales_id = system_account(session, SALES, total.currency, partner).id
    now = now or utcnow()
    transaction_id = session.execute(
        _INSERT_ORDER_TRANSACTION,
        {
            "public_id": public_id("txn"),
            "kind": ORDER,
            "currency": total.currency,
            "order_id": order_id,
            "created_at": now,
        },
    ).scalar_one()
    debited = _move_wallet(session, _account_code(WALLET, total.currency, partner), -total.minor)
    if debited is None:
        raise _insufficient(session, partner, total)
    wallet_id, balance = debited
    session.execute(
        _INSERT_POSTINGS,
        [
            {
                "transaction_id": transaction_id,
                "account_id": wallet_id,
                "amount_minor": -total.minor,
                "balance_after_minor": balance,
                "created_at": now,
            },
            {
                "transaction_id": transaction_id,
                "account_id": sales_id,
                "amount_minor": total.minor,
                "balance_after_minor": None,
                "created_at": now,
            },
        ],
    )


def refund(
    session: Session, partner: Partner, order_id: int, money: Money, reference: str
) -> LedgerTransaction:
    """Move ``money`` back from sales to the wallet; ``reference`` names what it refunds.

    The reference is unique, so the same refund can never be posted twice.
    """
    if money.minor <= 0:
        raise InvalidInputError("a refund must be positive")
    return _transfer(
        session,
        REFUND,
        order_id,
        money,
        source=system_account(session, SALES, money.currency, partner),
        target=account(session, WALLET, money.currency, partner),
        reference=reference,
    )


def hold_for_order(session: Session, partner: Partner, order_id: int, total: Money) -> None:
    """Set a pending order's total aside (wallet -> held), or raise InsufficientFundsError."""
    try:
        _transfer(
            session,
            HOLD,
            order_id,
            total,
            source=account(session, WALLET, total.currency, partner),
            target=account(session, HELD, total.currency, partner),
        )
    except _OverdrawnError:
        raise _insufficient(session, partner, total) from None


def capture_hold(
    session: Session, partner: Partner, order_id: int, total: Money, now: datetime | None = None
) -> None:
    """Pay a pending order from its hold (held -> sales) once it is delivered (at ``now``)."""
    _check_held_for(session, order_id, total)
    _transfer(
        session,
        ORDER,
        order_id,
        total,
        source=account(session, HELD, total.currency, partner),
        target=system_account(session, SALES, total.currency, partner),
        now=now,
    )


def release_hold(session: Session, partner: Partner, order_id: int, total: Money) -> None:
    """Give a failed pending order's hold back to the wallet (held -> wallet)."""
    _check_held_for(session, order_id, total)
    _transfer(
        session,
        RELEASE,
        order_id,
        total,
        source=account(session, HELD, total.currency, partner),
        target=account(session, WALLET, total.currency, partner),
    )


class _OverdrawnError(Exception):
    pass


class HoldMismatchError(RuntimeError):
    """A bug: an order's hold was to be paid out or released, but it does not hold that."""


def _check_held_for(session: Session, order_id: int, total: Money) -> None:
    """The partner's held account is shared by its pending orders: only this order's own
    hold may leave it, and only once."""
    held = session.scalar(
        select(func.coalesce(func.sum(Posting.amount_minor), 0))
        .join(LedgerTransaction, LedgerTransaction.id == Posting.transaction_id)
        .join(Account, Account.id == Posting.account_id)
        .where(LedgerTransaction.order_id == order_id, Account.kind == HELD)
    )
    if held != total.minor:
        raise HoldMismatchError(f"order {order_id} holds {held}, not {total.minor}")


def _transfer(
    session: Session,
    kind: str,
    order_id: int,
    money: Money,
    *,
    source: Account,
    target: Account,
    reference: str | None = None,
    now: datetime | None = None,
) -> LedgerTransaction:
    """One balanced ledger transaction moving ``money`` from ``source`` to ``target``.

    Partner accounts (wallet, held) keep a running balance and may not be overdrawn; system
    accounts (sales, funding) keep none.
    """
    txn = LedgerTransaction(
        public_id=public_id("txn"),
        kind=kind,
        currency=money.currency,
        reference=reference,
        order_id=order_id,
        created_at=now or utcnow(),
    )
    session.add(txn)
    session.flush()
    # Accounts in id order: a hold and a release between the same two cannot deadlock.
    moves = sorted(((source, -money.minor), (target, money.minor)), key=lambda move: move[0].id)
    for acct, amount in moves:
        balance_after = None
        if acct.partner_id is not None:
            moved = _move_wallet(session, acct.code, amount)
            if moved is None:
                raise _OverdrawnError()
            balance_after = moved[1]
        _post(session, txn, acct, amount, balance_after)
    return txn


def _insufficient(session: Session, partner: Partner, total: Money) -> InsufficientFundsError:
    held = session.scalar(
        select(Account.balance_minor).where(
            Account.code == _account_code(WALLET, total.currency, partner)
        )
    )
    balance = Money(held or 0, total.currency)
    return InsufficientFundsError(
        f"the order costs {total}; the available balance is {balance}",
        required=total.as_json(),
        balance=balance.as_json(),
    )


def balances(session: Session, partner_id: int, kind: str = WALLET) -> list[Money]:
    """The partner's available balances (or, with ``kind=HELD``, the money held)."""
    rows = session.execute(
        select(Account.currency, Account.balance_minor)
        .where(Account.partner_id == partner_id, Account.kind == kind)
        .order_by(Account.currency)
    )
    return [Money(balance, currency) for currency, balance in rows]


def set_low_balance_alert(
    session: Session, partner: Partner, currency: str, below: Money | None
) -> None:
    """Emit balance.low whenever the wallet falls below ``below`` (None turns the alert off)."""
    if below is not None and below.minor <= 0:
        raise InvalidInputError("the alert threshold must be positive", pointer="#/below")
    if below is None:  # never create a wallet just to clear its alert
        session.execute(
            update(Account)
            .where(Account.code == _account_code(WALLET, currency, partner))
            .values(low_balance_minor=None)
        )
        return
    account(session, WALLET, currency, partner).low_balance_minor = below.minor


def low_balance_alerts(session: Session, partner_id: int) -> list[Money]:
    rows = session.execute(
        select(Account.currency, Account.low_balance_minor)
        .where(
            Account.partner_id == partner_id,
            Account.kind == WALLET,
            Account.low_balance_minor.is_not(None),
        )
        .order_by(Account.currency)
    )
    return [Money(below or 0, currency) for currency, below in rows]


@dataclass(frozen=True)
class LedgerEntry:
    id: str  # the ledger transaction's public id
    kind: str
    amount: Money
    balance_after: Money
    reference: str | None
    order_public_id: str | None
    created_at: datetime


def ledger_entries(
    session: Session, partner_id: int, *, after: str | None, limit: int, currency: str | None
) -> list[LedgerEntry]:
    """The partner's wallet postings, oldest first, ``limit`` of them after the cursor.

    An entry is named by its ledger transaction's public id (each has one wallet posting), and
    the cursor is the last entry's id: nothing in either says how busy anyone else is.
    """
    own = (
        select(Posting, LedgerTransaction, Account.currency, Order.public_id)
        .join(LedgerTransaction, LedgerTransaction.id == Posting.transaction_id)
        .join(Account, Account.id == Posting.account_id)
        .outerjoin(Order, Order.id == LedgerTransaction.order_id)
        .where(Account.partner_id == partner_id, Account.kind == WALLET)
    )
    query = own.order_by(Posting.id).limit(limit)
    if after is not None:
        if not TRANSACTION_ID.fullmatch(after):
            raise InvalidCursorError()
        position = session.scalar(
            own.with_only_columns(Posting.id).where(LedgerTransaction.public_id == after)
        )
        if position is None:
            raise InvalidCursorError()
        query = query.where(Posting.id > position)
    if currency is not None:
        query = query.where(Account.currency == currency)
    return [
        LedgerEntry(
            id=txn.public_id,
            kind=txn.kind,
            amount=Money(posting.amount_minor, cur),
            balance_after=Money(posting.balance_after_minor or 0, cur),
            reference=txn.reference,
            order_public_id=order_public_id,
            created_at=posting.created_at,
        )
        for posting, txn, cur, order_public_id in session.execute(query)
    ]


def check(session: Session) -> list[str]:
    """Violations of 'money is conserved'."""
    problems: list[str] = []
    unbalanced = session.execute(
        select(LedgerTransaction.public_id, func.sum(Posting.amount_minor))
        .join(Posting, Posting.transaction_id == LedgerTransaction.id)
        .group_by(LedgerTransaction.id, LedgerTransaction.public_id)
        .having(func.sum(Posting.amount_minor) != 0)
    )
    problems += [f"transaction {txn} sums to {total}, not 0" for txn, total in unbalanced]
    mixed = session.execute(
        select(LedgerTransaction.public_id)
        .join(Posting, Posting.transaction_id == LedgerTransaction.id)
        .join(Account, Account.id == Posting.account_id)
        .where(Account.currency != LedgerTransaction.currency)
        .distinct()
    )
    problems += [f"transaction {txn} posts to an account of another currency" for (txn,) in mixed]
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
        ).where(Account.kind.in_((WALLET, HELD)))
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
