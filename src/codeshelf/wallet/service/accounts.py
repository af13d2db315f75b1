"""Ledger accounts and their balances: a wallet and a held account per partner and currency,
funding and sales per currency (sandbox money apart), low-balance alerts.

Wallet balances are kept on the account row and changed with a single conditional UPDATE, so
concurrent orders can never take a wallet below zero. The system accounts (funding, sales) keep
no running balance: a hot row every order had to lock would serialize all orders. Their
balances are the sum of their postings."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from codeshelf.kit.db import table_of
from codeshelf.kit.errors import DomainError, InvalidInputError
from codeshelf.kit.money import Money
from codeshelf.kit.reads import AsyncReads
from codeshelf.partners.models import Partner
from codeshelf.wallet.models import (
    Account,
    AccountKind,
)
from codeshelf.webhooks import service as webhooks


class InsufficientFundsError(DomainError):
    slug = "insufficient-funds"
    business_refusal = True


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
    _emit_if_low(session, account_id, balance, alert_below, amount)
    return account_id, balance


def _emit_if_low(
    session: Session, account_id: int, balance: int, alert_below: int | None, amount: int
) -> None:
    """Emit ``balance.low`` when moving ``amount`` just took the account below its alert."""
    if alert_below is not None and balance < alert_below <= balance - amount:
        _emit_balance_low(session, account_id, balance, alert_below)


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


def _insufficient(session: Session, partner: Partner, total: Money) -> InsufficientFundsError:
    held = session.scalar(
        select(Account.balance_minor).where(
            Account.code == _account_code(AccountKind.WALLET, total.currency, partner)
        )
    )
    balance = Money(held or 0, total.currency)
    return InsufficientFundsError(
        f"the order costs {total}; the available balance is {balance}",
        required=total.as_json(),
        balance=balance.as_json(),
    )


@dataclass(frozen=True)
class Balances:
    available: list[Money]  # the wallets, by currency
    held: list[Money]  # what waits in held accounts for backorders and review


# Both of a partner's kinds of account in one statement: the balance read of every partner.
_BALANCES = (
    select(Account.kind, Account.currency, Account.balance_minor)
    .where(Account.partner_id == bindparam("partner_id"))
    .order_by(Account.currency)
)


def _balances_of(rows: Iterable[Sequence[Any]]) -> Balances:
    found: dict[str, list[Money]] = {AccountKind.WALLET: [], AccountKind.HELD: []}
    for kind, currency, balance in rows:
        found.get(kind, []).append(Money(balance, currency))
    return Balances(found[AccountKind.WALLET], found[AccountKind.HELD])


async def all_balances_async(reads: AsyncReads, partner_id: int) -> Balances:
    """Both kinds of a partner's balances from the event loop: one round trip, no session."""
    return _balances_of(await reads.fetch_all(_BALANCES, {"partner_id": partner_id}))


def all_balances(session: Session, partner_id: int) -> Balances:
    """Both kinds of a partner's balances (the portal's overview)."""
    return _balances_of(session.execute(_BALANCES, {"partner_id": partner_id}))


def balances_of_partners(session: Session, partner_ids: Collection[int]) -> dict[int, Balances]:
    """Both kinds of balances of several partners at once (the console's list of partners);
    a partner that never held money is absent."""
    rows = session.execute(
        select(Account.partner_id, Account.kind, Account.currency, Account.balance_minor)
        .where(Account.partner_id.in_(partner_ids))
        .order_by(Account.partner_id, Account.currency)
    )
    grouped: dict[int, list[tuple[str, str, int]]] = {}
    for partner_id, kind, currency, balance in rows:
        assert partner_id is not None  # the filter is on partner ids
        grouped.setdefault(partner_id, []).append((kind, currency, balance))
    return {partner_id: _balances_of(found) for partner_id, found in grouped.items()}


def credit_limits(session: Session, partner_id: int) -> list[Money]:
    """How far below zero each of the partner's wallets may go, where it may at all."""
    rows = session.execute(
        select(Account.currency, Account.credit_limit_minor)
        .where(
            Account.partner_id == partner_id,
            Account.kind == AccountKind.WALLET,
            Account.credit_limit_minor > 0,
        )
        .order_by(Account.currency)
    )
    return [Money(limit, currency) for currency, limit in rows]


def balances(session: Session, partner_id: int, kind: str = AccountKind.WALLET) -> list[Money]:
    """The partner's available balances (or, with ``kind=AccountKind.HELD``, the money held):
    the same statement as ``all_balances_async``."""
    found = _balances_of(session.execute(_BALANCES, {"partner_id": partner_id}))
    by_kind: dict[str, list[Money]] = {
        AccountKind.WALLET: found.available,
        AccountKind.HELD: found.held,
    }
    return by_kind[kind]


def set_low_balance_alert(
    session: Session, partner: Partner, currency: str, below: Money | None
) -> None:
    """Emit balance.low whenever the wallet falls below ``below`` (None turns the alert off)."""
    if below is not None and below.minor <= 0:
        raise InvalidInputError("the alert threshold must be positive", pointer="#/below")
    if below is None:  # never create a wallet just to clear its alert
        session.execute(
            update(Account)
            .where(Account.code == _account_code(AccountKind.WALLET, currency, partner))
            .values(low_balance_minor=None)
        )
        return
    account(session, AccountKind.WALLET, currency, partner).low_balance_minor = below.minor


def low_balance_alerts(session: Session, partner_id: int) -> list[Money]:
    rows = session.execute(
        select(Account.currency, Account.low_balance_minor)
        .where(
            Account.partner_id == partner_id,
            Account.kind == AccountKind.WALLET,
            Account.low_balance_minor.is_not(None),
        )
        .order_by(Account.currency)
    )
    return [Money(below or 0, currency) for currency, below in rows]
