"""Moving money: deposits, order debits, refunds, and the holds of pending orders (wallet ->
held -> sales, or back). Every ledger transaction's postings sum to zero."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, bindparam, func, insert, literal, null, select, union_all
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from codeshelf.audit import service as audit
from codeshelf.kit.clock import utcnow
from codeshelf.kit.db import UTCDateTime, table_of
from codeshelf.kit.errors import ConflictError, InvalidInputError
from codeshelf.kit.ids import public_id
from codeshelf.kit.money import Money
from codeshelf.partners.models import Partner
from codeshelf.wallet.models import (
    TRANSACTION_PREFIX,
    Account,
    AccountKind,
    DepositRequest,
    DepositStatus,
    LedgerTransaction,
    Posting,
    TransactionKind,
)
from codeshelf.wallet.service.accounts import (
    _MOVE_WALLET,
    _account_code,
    _emit_if_low,
    _insufficient,
    _move_wallet,
    _system_code,
    account,
    system_account,
)


class DepositConflictError(ConflictError):
    slug = "deposit-reference-conflict"


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
    """Credit a wallet; idempotent on ``reference`` (the same deposit twice credits once).

    A reference that a deposit request holds (pending or declined: four eyes) is refused; only
    approving that request credits it (``deposits.approve_deposit``).
    """
    reference = checked_reference(reference)
    held = session.execute(
        select(DepositRequest.public_id, DepositRequest.status).where(
            DepositRequest.reference == reference
        )
    ).first()
    if held is not None and held.status != DepositStatus.APPROVED:
        raise DepositConflictError(
            f"reference {reference} belongs to deposit request {held.public_id} "
            f"({held.status}): only approving it credits the wallet"
        )
    return credit(session, partner, money, reference, actor)


def checked_reference(reference: str) -> str:
    reference = reference.strip()
    if not reference or len(reference) > 128:
        raise InvalidInputError(
            "a deposit reference of 1 to 128 characters is required", pointer="#/reference"
        )
    return reference


def credit(
    session: Session, partner: Partner, money: Money, reference: str, actor: str
) -> DepositResult:
    """The ledger side of a deposit (funding -> wallet), idempotent on ``reference``: what a
    direct deposit and an approved deposit request both post."""
    if money.minor <= 0:
        raise InvalidInputError("a deposit must be positive", pointer="#/amount")
    wallet = account(session, AccountKind.WALLET, money.currency, partner)
    existing = _deposit_by_reference(session, reference)
    if existing is not None:
        return _replayed_deposit(session, existing, wallet, money)
    txn = LedgerTransaction(
        public_id=public_id(TRANSACTION_PREFIX),
        kind=TransactionKind.DEPOSIT,
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
    funding = system_account(session, AccountKind.FUNDING, money.currency, partner)
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
    if existing.kind != TransactionKind.DEPOSIT or credited != money.minor:
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
    sales_code = _system_code(AccountKind.SALES, total.currency, partner)
    sales_id = session.execute(_ACCOUNT_ID, {"b_code": sales_code}).scalar()
    if sales_id is None:  # the first order in this currency
        sales_id = system_account(session, AccountKind.SALES, total.currency, partner).id
    now = now or utcnow()
    transaction_id = session.execute(
        _INSERT_ORDER_TRANSACTION,
        {
            "public_id": public_id(TRANSACTION_PREFIX),
            "kind": TransactionKind.ORDER,
            "currency": total.currency,
            "order_id": order_id,
            "created_at": now,
        },
    ).scalar_one()
    wallet_code = _account_code(AccountKind.WALLET, total.currency, partner)
    if session.get_bind().dialect.name == "postgresql":
        _debit_and_post(session, partner, total, wallet_code, transaction_id, sales_id, now)
        return
    debited = _move_wallet(session, wallet_code, -total.minor)
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
        TransactionKind.REFUND,
        order_id,
        money,
        source=system_account(session, AccountKind.SALES, money.currency, partner),
        target=account(session, AccountKind.WALLET, money.currency, partner),
        reference=reference,
    )


def hold_for_order(session: Session, partner: Partner, order_id: int, total: Money) -> None:
    """Set a pending order's total aside (wallet -> held), or raise InsufficientFundsError."""
    try:
        _transfer(
            session,
            TransactionKind.HOLD,
            order_id,
            total,
            source=account(session, AccountKind.WALLET, total.currency, partner),
            target=account(session, AccountKind.HELD, total.currency, partner),
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
        TransactionKind.ORDER,
        order_id,
        total,
        source=account(session, AccountKind.HELD, total.currency, partner),
        target=system_account(session, AccountKind.SALES, total.currency, partner),
        now=now,
    )


def release_hold(session: Session, partner: Partner, order_id: int, total: Money) -> None:
    """Give a failed pending order's hold back to the wallet (held -> wallet)."""
    _check_held_for(session, order_id, total)
    _transfer(
        session,
        TransactionKind.RELEASE,
        order_id,
        total,
        source=account(session, AccountKind.HELD, total.currency, partner),
        target=account(session, AccountKind.WALLET, total.currency, partner),
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
        .where(LedgerTransaction.order_id == order_id, Account.kind == AccountKind.HELD)
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
        public_id=public_id(TRANSACTION_PREFIX),
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


def _debit_and_post_statement() -> Any:
    """PostgreSQL: the wallet's debit and both postings in one statement (one round trip while
    the wallet row is locked, instead of two). It returns the wallet row as ``_MOVE_WALLET`` does,
    or nothing when the debit would overdraw the wallet (and then posts nothing)."""
    moved = _MOVE_WALLET.cte("moved")
    transaction_id = bindparam("b_transaction_id", type_=BigInteger)
    now = bindparam("b_now", type_=UTCDateTime)
    amount = bindparam("b_amount", type_=BigInteger)
    legs = union_all(
        select(transaction_id, moved.c.id, amount, moved.c.balance_minor, now),
        select(
            transaction_id,
            bindparam("b_sales_id", type_=BigInteger),
            literal(0, BigInteger) - amount,
            null(),
            now,
        ).select_from(moved),
    )
    postings = table_of(Posting)
    columns = ["transaction_id", "account_id", "amount_minor", "balance_after_minor", "created_at"]
    posted = insert(postings).from_select(columns, legs).cte("posted")
    return select(moved.c.id, moved.c.balance_minor, moved.c.low_balance_minor).add_cte(posted)


_DEBIT_AND_POST = _debit_and_post_statement()


def _debit_and_post(
    session: Session,
    partner: Partner,
    total: Money,
    wallet_code: str,
    transaction_id: int,
    sales_id: int,
    now: datetime,
) -> None:
    row = session.execute(
        _DEBIT_AND_POST,
        {
            "b_wallet_code": wallet_code,
            "b_amount": -total.minor,
            "b_transaction_id": transaction_id,
            "b_sales_id": sales_id,
            "b_now": now,
        },
    ).first()
    if row is None:
        raise _insufficient(session, partner, total)
    account_id, balance, alert_below = row
    _emit_if_low(session, account_id, balance, alert_below, -total.minor)
