"""When an order is held for an operator's review instead of being fulfilled (seed 003).

An order is ambiguous when it is above the partner's quantity or amount limit, or far above the
partner's usual order size. The rules are pure; ``usual_quantity`` reads the history they need.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from codeshelf.kit.money import Money
from codeshelf.kit.settings import Settings
from codeshelf.orders.models import Order, OrderItem, OrderKind, OrderStatus
from codeshelf.partners.models import Partner

HISTORY = 20  # the usual size is the median of this many latest delivered orders...
MIN_HISTORY = 5  # ...once the partner has this many


@dataclass(frozen=True)
class ReviewLimits:
    quantity_over: int | None = None
    amount_over: Money | None = None  # applies to orders in this currency
    unusual_factor: int = 10
    unusual_floor: int = 100  # orders of at most this many codes are never unusual

    @classmethod
    def for_partner(cls, partner: Partner, settings: Settings) -> ReviewLimits:
        amount = None
        if partner.review_amount_over_minor is not None and partner.review_amount_currency:
            amount = Money(partner.review_amount_over_minor, partner.review_amount_currency)
        return cls(
            quantity_over=partner.review_quantity_over or settings.review_quantity_over,
            amount_over=amount,
            unusual_factor=settings.review_unusual_factor,
            unusual_floor=settings.review_unusual_floor,
        )

    def may_be_unusual(self, quantity: int) -> bool:
        """Whether the partner's history is worth reading for an order of this size."""
        return quantity > self.unusual_floor


def reasons(quantity: int, total: Money, limits: ReviewLimits, usual: float | None) -> list[str]:
    """Why an order of ``quantity`` codes costing ``total`` needs review (empty: it does not)."""
    found = []
    if limits.quantity_over is not None and quantity > limits.quantity_over:
        found.append(f"{quantity} codes is above the limit of {limits.quantity_over}")
    amount = limits.amount_over
    if amount is not None and amount.currency == total.currency and total.minor > amount.minor:
        found.append(f"{total} is above the limit of {amount}")
    if (
        usual is not None
        and limits.may_be_unusual(quantity)
        and quantity > usual * limits.unusual_factor
    ):
        found.append(
            f"{quantity} codes is more than {limits.unusual_factor} times the usual order "
            f"of {usual:g}"
        )
    return found


def usual_quantity(session: Session, partner_id: int) -> float | None:
    """The median size of the partner's latest delivered orders, if it has enough of them."""
    latest = (
        select(Order.id)
        .where(
            Order.partner_id == partner_id,
            Order.kind == OrderKind.PURCHASE,
            Order.status == OrderStatus.DELIVERED,
        )
        .order_by(Order.id.desc())
        .limit(HISTORY)
        .subquery()
    )
    sizes = list(
        session.scalars(
            select(func.sum(OrderItem.quantity))
            .where(OrderItem.order_id.in_(select(latest.c.id)))
            .group_by(OrderItem.order_id)
        )
    )
    if len(sizes) < MIN_HISTORY:
        return None
    return float(statistics.median(sizes))  # an even history's median may end in .5
