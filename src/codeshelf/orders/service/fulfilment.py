"""Pending orders after they were placed: backorders filled first-come-first-served as stock
arrives or failed at their deadline, and orders held for review approved or rejected.

A pending order's total is held in the wallet; it is paid from the hold when the order is
delivered (whole: an order is never delivered in part) and released when it fails.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from codeshelf.audit import service as audit
from codeshelf.catalog.models import Product
from codeshelf.kit.clock import utcnow
from codeshelf.kit.errors import ConflictError
from codeshelf.orders.models import FailureReason, HoldReason, Order, OrderStatus, total_of
from codeshelf.orders.service import placement, queries
from codeshelf.orders.service.events import notify_fulfilled
from codeshelf.partners.models import Partner
from codeshelf.stock.service import InsufficientStockError
from codeshelf.wallet import service as wallet


class NotUnderReviewError(ConflictError):
    slug = "order-not-under-review"


def _waiting(
    session: Session, reasons: tuple[str, ...], *, partner_id: int | None, sandbox: bool
) -> list[Order]:
    """Orders held for ``reasons``, first come first served, locked for this transaction,
    with every product they need locked too (in id order, before any money is touched, as
    every other path locks them): one pass over many orders cannot deadlock a new order."""
    query = (
        select(Order)
        .join(Partner, Partner.id == Order.partner_id)
        .where(Order.hold_reason.in_(reasons))
        .order_by(Order.waiting_since, Order.id)
        .with_for_update(of=Order)
    )
    if partner_id is not None:
        query = query.where(Order.partner_id == partner_id)
    elif not sandbox:
        query = query.where(Partner.sandbox_of_id.is_(None))
    orders = list(session.scalars(query))
    product_ids = sorted({item.product_id for order in orders for item in order.items})
    if product_ids:
        session.execute(
            select(Product.id)
            .where(Product.id.in_(product_ids))
            .order_by(Product.id)
            .with_for_update(key_share=True)  # as UPDATE takes it: no wait on foreign-key locks
        )
    return orders


def _past_deadline(order: Order, now: datetime) -> bool:
    return order.backorder_until is not None and order.backorder_until <= now


def _partner(session: Session, order: Order) -> Partner:
    partner = session.get(Partner, order.partner_id)
    assert partner is not None
    return partner


def _try_deliver(session: Session, partner: Partner, order: Order) -> bool:
    """Deliver a held order whole from stock and pay it from its hold; False if stock is short."""
    products = queries.products_by_id(session, {item.product_id for item in order.items})
    now = utcnow()  # the codes' delivery time and the order's: the same day for reconciliation
    waited_for_stock = order.hold_reason == HoldReason.STOCK
    try:
        with session.begin_nested():
            # Products first, then codes, then money: the order every path locks them in.
            if waited_for_stock:
                placement.stop_waiting_for_stock(session, partner, order, filled=True)
            placement.allocate_items(
                session,
                partner,
                order,
                products,
                # A backorder being filled in turn may take what is promised to it; an order
                # just approved after review queues behind the backorders like a new order.
                first_in_line=waited_for_stock,
                now=now,
            )
    except InsufficientStockError:
        return False
    wallet.capture_hold(session, partner, order.id, total_of(order), now)
    placement.mark_delivered(session, order, now)
    notify_fulfilled(session, order, created=False)
    return True


def fill_backorders(
    session: Session, now: datetime | None = None, *, sandbox_partner_id: int | None = None
) -> list[str]:
    """Deliver waiting backorders, oldest first, as far as stock allows; their public ids.

    First come, first served: once an order cannot be filled, no later order takes the
    products it waits for. Orders past their deadline are left for ``expire_backorders``.
    Live backorders only, unless ``sandbox_partner_id`` names the sandbox partner whose
    (synthetic) backorders to fill.
    """
    now = now or utcnow()
    delivered = []
    blocked: set[int] = set()
    waiting = _waiting(session, (HoldReason.STOCK,), partner_id=sandbox_partner_id, sandbox=False)
    for order in waiting:
        if _past_deadline(order, now):
            continue
        wanted = {item.product_id for item in order.items}
        if wanted & blocked:
            continue
        if _try_deliver(session, _partner(session, order), order):
            delivered.append(order.public_id)
        else:
            blocked |= wanted
    return delivered


def expire_backorders(session: Session, now: datetime) -> list[str]:
    """Fail the backorders whose deadline has passed, waiting for stock or still under review
    (their holds go back); their ids."""
    expired = []
    for order in _waiting(
        session, (HoldReason.STOCK, HoldReason.REVIEW), partner_id=None, sandbox=True
    ):
        if order.allow_backorder and _past_deadline(order, now):
            placement.fail(
                session, _partner(session, order), order, FailureReason.BACKORDER_EXPIRED
            )
            expired.append(order.public_id)
    return expired


def tick(session: Session, now: datetime) -> tuple[list[str], list[str]]:
    """The worker's periodic pass: expire late backorders, then fill what stock allows."""
    expired = expire_backorders(session, now)
    return expired, fill_backorders(session, now)


REVIEW_PAGE = 200  # the oldest held orders shown at once; partners decide how many there are


def _held_for_review() -> Select[Order]:
    return (
        select(Order)
        .join(Partner, Partner.id == Order.partner_id)
        .where(Order.hold_reason == HoldReason.REVIEW, Partner.sandbox_of_id.is_(None))
    )


def review_queue(session: Session, limit: int = REVIEW_PAGE) -> list[Order]:
    """Live orders held for review, oldest first (sandbox orders are decided by the partner),
    at most ``limit`` of them."""
    return list(session.scalars(_held_for_review().order_by(Order.id).limit(limit)))


def review_count(session: Session) -> int:
    """How many live orders wait for review (one count, whatever their number)."""
    counted = session.scalar(select(func.count()).select_from(_held_for_review().subquery()))
    return int(counted or 0)


def decide_review(
    session: Session,
    order_public_id: str,
    *,
    approve: bool,
    actor: str,
    reason: str,
    now: datetime,
    partner_id: int | None = None,
    live_only: bool = False,
) -> Order:
    """Approve (deliver now, or backorder, or fail for want of stock) or reject a held order.

    An order placed before its product was retired is still delivered from stock on approval,
    but does not become a backorder: short of stock, it fails.

    ``partner_id`` limits it to that partner's orders (the sandbox's own review rehearsal);
    ``live_only`` to live orders (the operator's queue).
    """
    order = session.scalar(
        select(Order).where(Order.public_id == order_public_id).with_for_update()
    )
    partner = None if order is None else _partner(session, order)
    if (
        order is None
        or partner is None
        or (partner_id is not None and order.partner_id != partner_id)
        or (live_only and partner.is_sandbox)
    ):
        raise queries.OrderNotFoundError(f"no order {order_public_id}")
    if order.status != OrderStatus.PENDING or order.hold_reason != HoldReason.REVIEW:
        raise NotUnderReviewError(f"order {order.public_id} is not waiting for review")
    audit.record(
        session,
        actor=actor,
        action="order.review_approve" if approve else "order.review_reject",
        partner_public_id=partner.public_id,
        subject=order.public_id,
        details={"reason": reason},
    )
    if not approve:
        placement.fail(session, partner, order, FailureReason.REVIEW_REJECTED)
    elif order.allow_backorder and _past_deadline(order, now):
        placement.fail(
            session, partner, order, FailureReason.BACKORDER_EXPIRED
        )  # the partner stopped waiting
    elif _try_deliver(session, partner, order):
        pass
    elif order.allow_backorder and _all_on_sale(session, order):
        placement.start_waiting(session, partner, order)
    else:  # a retired product takes no backorder: what stock cannot deliver now fails
        placement.fail(session, partner, order, FailureReason.OUT_OF_STOCK)
    return order


def _all_on_sale(session: Session, order: Order) -> bool:
    products = queries.products_by_id(session, {item.product_id for item in order.items})
    return all(product.retired_at is None for product in products.values())
