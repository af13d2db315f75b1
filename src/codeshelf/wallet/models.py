from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from codeshelf.kit.clock import utcnow
from codeshelf.kit.db import Base, UTCDateTime, one_of

TRANSACTION_PREFIX = "txn"  # a ledger transaction's public id: txn_ and 20 hex digits


class AccountKind(StrEnum):
    WALLET = "wallet"  # a partner's prepaid balance in one currency
    FUNDING = "funding"  # where deposits come from (money received from partners)
    SALES = "sales"  # where order debits go (revenue)
    HELD = "held"  # a partner's money set aside for its pending orders, per currency


class TransactionKind(StrEnum):
    DEPOSIT = "deposit"
    ORDER = "order"  # an order's payment: from the wallet, or from its hold
    REFUND = "refund"
    HOLD = "hold"  # wallet -> held, when a pending order is accepted
    RELEASE = "release"  # held -> wallet, when a pending order fails


class Account(Base):
    """One side of double-entry postings; ``balance_minor`` is the running sum of its postings."""

    __tablename__ = "ledger_accounts"
    __table_args__ = (
        CheckConstraint(one_of("kind", AccountKind), name="kind"),
        CheckConstraint(
            "kind != 'wallet' OR balance_minor + credit_limit_minor >= 0",
            name="wallet_not_negative",
        ),
        CheckConstraint("credit_limit_minor >= 0", name="credit_limit_not_negative"),
        CheckConstraint("kind != 'held' OR balance_minor >= 0", name="held_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)  # "wallet:ptr_…:USD", "sales:USD"
    kind: Mapped[str] = mapped_column(String(16))
    partner_id: Mapped[int | None] = mapped_column(ForeignKey("partners.id"), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    balance_minor: Mapped[int] = mapped_column(default=0)
    credit_limit_minor: Mapped[int] = mapped_column(default=0)
    # A wallet whose balance falls below this emits balance.low (None: no alert).
    low_balance_minor: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LedgerTransaction(Base):
    """A balanced group of postings: a deposit, an order debit or a refund."""

    __tablename__ = "ledger_transactions"
    __table_args__ = (
        CheckConstraint(one_of("kind", TransactionKind), name="kind"),
        CheckConstraint(
            "kind NOT IN ('order', 'hold', 'release') OR order_id IS NOT NULL",
            name="order_debit_has_order",
        ),
        CheckConstraint("kind != 'deposit' OR reference IS NOT NULL", name="deposit_has_reference"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    currency: Mapped[str] = mapped_column(String(3))
    # Deposits are idempotent on their reference (a bank transfer id, say).
    reference: Mapped[str | None] = mapped_column(String(128), unique=True)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Posting(Base):
    __tablename__ = "ledger_postings"
    __table_args__ = (
        CheckConstraint("amount_minor != 0", name="amount_not_zero"),
        Index("ix_ledger_postings_account_id_id", "account_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    transaction_id: Mapped[int] = mapped_column(ForeignKey("ledger_transactions.id"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("ledger_accounts.id"))
    amount_minor: Mapped[int]  # signed: credits to a wallet are positive
    # Running balance after this posting; wallets only (system accounts keep none).
    balance_after_minor: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DepositStatus(StrEnum):
    PENDING = "pending"  # above the approval threshold: waits for a second person
    APPROVED = "approved"  # credited: ``transaction_id`` is the deposit
    DECLINED = "declined"


DEPOSIT_REQUEST_PREFIX = "dep"


class DepositRequest(Base):
    """A deposit above ``CODESHELF_DEPOSIT_APPROVAL_OVER`` for its currency (four eyes): it is
    credited only when a second finance or admin member, not the one who asked, approves it."""

    __tablename__ = "deposit_requests"
    __table_args__ = (
        CheckConstraint(one_of("status", DepositStatus), name="status"),
        CheckConstraint("amount_minor > 0", name="amount_positive"),
        CheckConstraint(
            "(status = 'approved') = (transaction_id IS NOT NULL)", name="approved_has_transaction"
        ),
        CheckConstraint("decided_by IS NULL OR decided_by != requested_by", name="four_eyes"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), index=True)
    amount_minor: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    reference: Mapped[str] = mapped_column(String(128), unique=True)
    status: Mapped[str] = mapped_column(String(16), default=DepositStatus.PENDING)
    requested_by: Mapped[str] = mapped_column(String(64))  # actors, as in the audit log
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    note: Mapped[str | None] = mapped_column(String(500))  # why declined
    transaction_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_transactions.id"))
