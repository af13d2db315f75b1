from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from codeshelf.kit.clock import utcnow
from codeshelf.kit.db import Base, UTCDateTime, one_of
from codeshelf.kit.money import Money

ORDER_PREFIX = "ord"  # an order's public id: ord_ and 20 hex digits


class OrderStatus(StrEnum):
    PENDING = "pending"
    PAID = "paid"
    DELIVERED = "delivered"
    FAILED = "failed"


class OrderKind(StrEnum):
    PURCHASE = "purchase"
    REPLACEMENT = "replacement"  # free codes replacing claimed ones (see claims)


class HoldReason(StrEnum):
    """Why a pending order waits (its money is held meanwhile)."""

    REVIEW = "review"  # an operator's review
    STOCK = "stock"  # stock: a backorder


class FailureReason(StrEnum):
    BACKORDER_EXPIRED = "backorder_expired"
    REVIEW_REJECTED = "review_rejected"
    OUT_OF_STOCK = "out_of_stock"  # approved after review, but no stock and no backorder
    SANDBOX_FORCED = "sandbox_forced_failure"


TRANSITIONS: dict[str, set[OrderStatus]] = {
    OrderStatus.PENDING: {OrderStatus.PAID, OrderStatus.FAILED},
    OrderStatus.PAID: {OrderStatus.DELIVERED, OrderStatus.FAILED},
    OrderStatus.DELIVERED: set(),
    OrderStatus.FAILED: set(),
}


class IllegalTransitionError(RuntimeError):
    """A bug: an order was moved along a path its lifecycle does not have."""


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("partner_id", "client_order_id"),
        CheckConstraint(one_of("status", OrderStatus), name="status"),
        CheckConstraint("total_minor >= 0", name="total_not_negative"),
        CheckConstraint(one_of("kind", OrderKind), name="kind"),
        CheckConstraint(
            f"hold_reason IS NULL OR ({one_of('hold_reason', HoldReason)} AND status = 'pending')",
            name="hold_reason",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), index=True)
    client_order_id: Mapped[str | None] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16), default=OrderStatus.PENDING)
    kind: Mapped[str] = mapped_column(
        String(16), default=OrderKind.PURCHASE, server_default=OrderKind.PURCHASE.value
    )
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
        return self.hold_reason == HoldReason.REVIEW

    def advance(self, status: OrderStatus) -> None:
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


def total_of(order: Order) -> Money:
    return Money(order.total_minor, order.currency)
