"""No code is lost, none is given twice: batches hold what was imported, every code is in a
known state, an order item holds no codes or exactly its quantity, and stock promised to
backorders is what they wait for."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from codeshelf.catalog.models import Product
from codeshelf.invariants.window import Window, within
from codeshelf.orders.models import HoldReason, Order, OrderItem, OrderStatus
from codeshelf.partners.models import Partner
from codeshelf.stock.models import Batch, Code, CodeState


def batch_counts(session: Session, window: Window | None = None) -> list[str]:
    """Each batch (imported in the window) stores as many codes as it says it imported."""
    rows = session.execute(
        select(Batch.reference, Batch.code_count, func.count(Code.id))
        .outerjoin(Code, Code.batch_id == Batch.id)
        .where(within(window, Batch.imported_at))
        .group_by(Batch.id, Batch.reference, Batch.code_count)
    )
    return [
        f"batch {reference} imported {expected} codes but {stored} are stored"
        for reference, expected, stored in rows
        if expected != stored
    ]


def code_states(session: Session) -> list[str]:
    unknown = session.scalar(select(func.count()).where(Code.state.not_in(tuple(CodeState))))
    return [f"{unknown} codes in an unknown state"] if unknown else []


@dataclass(frozen=True)
class ItemCodes:
    order_id: str
    status: str
    live: bool  # not a sandbox order (those deliver synthetic codes, none from stock)
    delivered_at: datetime | None
    item_id: int
    quantity: int
    codes: int  # codes on the item (delivered in the window, when there is one)


def codes_per_item(session: Session, window: Window | None = None) -> list[ItemCodes]:
    """Every order item with the codes it holds: the one query behind "codes delivered match the
    quantity ordered". With a window: the items of orders delivered in it, counting the codes
    delivered in it."""
    codes = (
        select(Code.order_item_id, func.count().label("codes"))
        .where(Code.order_item_id.is_not(None), within(window, Code.delivered_at))
        .group_by(Code.order_item_id)
        .subquery()
    )
    query = (
        select(
            Order.public_id,
            Order.status,
            Partner.sandbox_of_id.is_(None),
            Order.delivered_at,
            OrderItem.id,
            OrderItem.quantity,
            func.coalesce(codes.c.codes, 0),
        )
        .join(OrderItem, OrderItem.order_id == Order.id)
        .join(Partner, Partner.id == Order.partner_id)
        .outerjoin(codes, codes.c.order_item_id == OrderItem.id)
    )
    if window is not None:
        query = query.where(Order.status == OrderStatus.DELIVERED, window.holds(Order.delivered_at))
    return [ItemCodes(*row) for row in session.execute(query.order_by(OrderItem.id))]


def item_quantities(rows: list[ItemCodes]) -> list[str]:
    """An order item holds no codes or all of them."""
    return [
        f"order item {row.item_id}: {row.quantity} ordered, {row.codes} codes"
        for row in rows
        if row.codes not in (0, row.quantity)
    ]


def delivered_quantities(rows: list[ItemCodes]) -> list[str]:
    """A delivered live order holds every code it ordered."""
    return [
        f"order {row.order_id}: {row.quantity} codes ordered, {row.codes} delivered"
        for row in rows
        if row.live and row.status == OrderStatus.DELIVERED and row.codes != row.quantity
    ]


def deliveries_of_the_day(session: Session, window: Window) -> list[str]:
    """Codes delivered this day against the live orders delivered this day; codes delivered to
    no order, or to an order that was not delivered this day."""
    problems = [
        f"order {row.order_id}: {row.quantity} codes ordered, {row.codes} delivered that day"
        for row in codes_per_item(session, window)
        if row.live and row.codes != row.quantity
    ]
    strays = session.scalar(
        select(func.count())
        .select_from(Code)
        .outerjoin(OrderItem, OrderItem.id == Code.order_item_id)
        .where(window.holds(Code.delivered_at), OrderItem.id.is_(None))
    )
    if strays:
        problems.append(f"{strays} codes were delivered that day to no order")
    misplaced = session.execute(
        select(Order.public_id, Order.status, func.count(Code.id))
        .select_from(Code)
        .join(OrderItem, OrderItem.id == Code.order_item_id)
        .join(Order, Order.id == OrderItem.order_id)
        .where(
            window.holds(Code.delivered_at),
            or_(
                Order.status != OrderStatus.DELIVERED,
                Order.delivered_at < window.start,
                Order.delivered_at >= window.end,
            ),
        )
        .group_by(Order.public_id, Order.status)
    )
    problems += [
        f"{codes} codes were delivered that day to order {order_id}, which is {status}"
        for order_id, status, codes in misplaced
    ]
    return problems


def promises(session: Session) -> list[str]:
    """Codes promised to backorders (products.backordered) are what live backorders wait for."""
    waiting = (
        select(OrderItem.product_id, func.sum(OrderItem.quantity).label("quantity"))
        .join(Order, Order.id == OrderItem.order_id)
        .join(Partner, Partner.id == Order.partner_id)
        .where(Order.hold_reason == HoldReason.STOCK, Partner.sandbox_of_id.is_(None))
        .group_by(OrderItem.product_id)
        .subquery()
    )
    rows = session.execute(
        select(Product.sku, Product.backordered, waiting.c.quantity).outerjoin(
            waiting, waiting.c.product_id == Product.id
        )
    )
    return [
        f"product {sku}: {promised} codes promised to backorders, which wait for {wanted or 0}"
        for sku, promised, wanted in rows
        if promised != (wanted or 0)
    ]
