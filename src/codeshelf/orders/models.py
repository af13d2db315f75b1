from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from codeshelf.kit.clock import utcnow
from codeshelf.kit.db import Base, UTCDateTime

PENDING = "pending"
PAID = "paid"
DELIVERED = "delivered"
FAILED = "failed"
ORDER_STATUSES = (PENDING, PAID, DELIVERED, FAILED)
PURCHASE = "purchase"
REPLACEMENT = "replacement"  # free codes replacing claimed ones (see claims)
ORDER_KINDS = (PURCHASE, REPLACEMENT)
TRANSITIONS = {PENDING: {PAID, FAILED}, PAID: {DELIVERED, FAILED}, DELIVERED: set(), FAILED: set()}
# Why a pending order waits (its money is held meanwhile): an operator's review, or stock.
REVIEW = "review"
STOCK = "stock"
HOLD_REASONS = (REVIEW, STOCK)


class IllegalTransitionError(RuntimeError):
    """A bug: an order was moved along a path its lifecycle does not have."""


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("partner_id", "client_order_id"),
        CheckConstraint(f"status IN {ORDER_STATUSES!r}", name="status"),
        CheckConstraint("total_minor >= 0", name="total_not_negative"),
        CheckConstraint(f"kind IN {ORDER_KINDS!r}", name="kind"),
        CheckConstraint(
            f"hold_reason IS NULL OR (hold_reason IN {HOLD_REASONS!r} AND status = 'pending')",
            name="hold_reason",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), index=True)
    client_order_id: Mapped[str | None] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16), default=PENDING)
    kind: Mapped[str] = mapped_column(String(16), default=PURCHASE, server_default=PURCHASE)
    currency: Mapped[str] = mapped_column(String(3))
    total_minor: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    allow_backorder: Mapped[bool] = mapped_column(default=False, server_default=false())
    # The partner's deadline for a backorder (capped by CODESHELF_BACKORDER_MAX_HOURS).
    backorder_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    hold_reason: Mapped[str | None] = mapped_column(String(16), index=True)
    # Since when a backorder waits for stock: its place in the first-come-first-served line.
    waiting_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    review_reasons: Mapped[str | None] = mapped_column(Text)
    failure_reason: Mapped[str | None] = mapped_column(String(32))

    items: Mapped[list[OrderItem]] = relationship(
        back_populates="order", order_by="OrderItem.id", lazy="selectin"
    )

    @property
    def review_required(self) -> bool:
        return self.hold_reason == REVIEW

    def advance(self, status: str) -> None:
        if status not in TRANSITIONS[self.status]:
            raise IllegalTransitionError(f"order {self.public_id}: {self.status} -> {status}")
        self.status = status


class OrderItem(Base):
    __tablename__ = "order_items"
    __table_args__ = (CheckConstraint("quantity > 0", name="quantity_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    quantity: Mapped[int]
    unit_price_minor: Mapped[int]

    order: Mapped[Order] = relationship(back_populates="items")


PROCESSING = "processing"
COMPLETED = "completed"


class IdempotencyRecord(Base):
    """A partner's Idempotency-Key and, once the work is done, the response it produced."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("partner_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"))
    key: Mapped[str] = mapped_column(String(255))
    request_fingerprint: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), default=PROCESSING)
    lock_token: Mapped[str] = mapped_column(String(32))
    locked_until: Mapped[datetime] = mapped_column(UTCDateTime)
    response_status: Mapped[int | None]
    response_body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
