"""Placing orders: synchronous and all-or-nothing, or pending with the total held.

In one transaction an order is priced, codes are allocated (stock is checked before money), the
wallet is debited, and the order is delivered; or, for review or a backorder, it stays pending
with its total held. Any refusal raises: the caller rolls back and nothing is left behind."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from codeshelf.catalog import service as catalog
from codeshelf.catalog.models import Product
from codeshelf.kit.clock import utcnow
from codeshelf.kit.db import Base, table_of
from codeshelf.kit.errors import ConflictError, InvalidInputError
from codeshelf.kit.ids import public_id
from codeshelf.orders import magic
from codeshelf.orders.models import (
    ORDER_PREFIX,
    FailureReason,
    HoldReason,
    Order,
    OrderItem,
    OrderKind,
    OrderStatus,
    total_of,
)
from codeshelf.orders.service import queries, review
from codeshelf.orders.service.events import ORDER_CREATED, notify, notify_fulfilled
from codeshelf.orders.service.pricing import PricedItem
from codeshelf.orders.service.review import ReviewLimits
from codeshelf.partners.models import Partner
from codeshelf.stock import service as stock
from codeshelf.wallet import service as wallet

# A sandbox backorder forced by its client_order_id, with no deadline of its own, waits this long.
DEFAULT_SANDBOX_BACKORDER = timedelta(hours=1)


def backorder_deadline(
    allow_backorder: bool, requested: datetime | None, max_hours: int, now: datetime
) -> datetime | None:
    """When a backorder stops waiting: the partner's ``requested`` deadline, at most
    ``max_hours`` from now (and that by default); None for an order that may not wait."""
    if not allow_backorder:
        if requested is not None:
            raise InvalidInputError(
                "backorder_until needs allow_backorder: true", pointer="#/backorder_until"
            )
        return None
    latest = now + timedelta(hours=max_hours)
    if requested is None:
        return latest
    if requested <= now:
        raise InvalidInputError("backorder_until is in the past", pointer="#/backorder_until")
    if requested > latest:
        raise InvalidInputError(
            f"a backorder may wait at most {max_hours} hours (until {latest.isoformat()})",
            pointer="#/backorder_until",
        )
    return requested.astimezone(UTC)


class DuplicateClientOrderIdError(ConflictError):
    slug = "duplicate-client-order-id"
    business_refusal = True


def duplicate_client_order_id(order: Order) -> DuplicateClientOrderIdError:
    return DuplicateClientOrderIdError(
        f"client_order_id {order.client_order_id!r} was already used by order {order.public_id}",
        pointer="#/client_order_id",
        existing_order_id=order.public_id,
    )


def place_order(
    session: Session,
    partner: Partner,
    items: list[PricedItem],
    client_order_id: str | None,
    *,
    backorder_until: datetime | None = None,
    limits: ReviewLimits | None = None,
) -> Order:
    """Place an order. Raises on refusal: the caller rolls back.

    Usually the order is priced, allocated, paid and delivered at once. It stays ``pending``,
    with its total held in the wallet, when it needs an operator's review (``limits``), or when
    stock is short and ``backorder_until`` says it may wait that long. The order's items are set
    in memory, so the caller can render it without another query.
    """
    if client_order_id is not None:
        existing = queries.find_by_client_order_id(session, partner.id, client_order_id)
        if existing is not None:
            raise duplicate_client_order_id(existing)
    order = _new_order(partner, items, client_order_id, backorder_until)
    forced = magic.forced_outcome(client_order_id) if partner.is_sandbox else None
    why = _review_reasons(session, partner, order, limits)
    if forced == magic.Outcome.REVIEW:
        why.append("sandbox: client_order_id asks for review")
    products = {line.product.id: line.product for line in items}
    if forced == magic.Outcome.FAIL:
        _insert_order(session, order, partner.id)
        notify(session, order, ORDER_CREATED)
        fail(session, partner, order, FailureReason.SANDBOX_FORCED)
    elif why:
        if backorder_until is None:  # refuse now what approval could not deliver either
            _check_stock(session, partner, order, products)
        _insert_order(session, order, partner.id)
        hold(session, partner, order, HoldReason.REVIEW, products, why)
    elif forced == magic.Outcome.BACKORDER:
        order.allow_backorder = True
        order.backorder_until = backorder_until or utcnow() + DEFAULT_SANDBOX_BACKORDER
        _insert_order(session, order, partner.id)
        hold(session, partner, order, HoldReason.STOCK, products)
    elif backorder_until is None:
        _place_now(session, partner, order, products)
    else:
        _place_or_backorder(session, partner, order, products)
    return order


def _new_order(
    partner: Partner,
    items: list[PricedItem],
    client_order_id: str | None,
    backorder_until: datetime | None,
) -> Order:
    currency = items[0].unit_price.currency
    now = utcnow()
    order = Order(
        public_id=public_id(ORDER_PREFIX),
        partner_id=partner.id,
        client_order_id=client_order_id,
        status=OrderStatus.PENDING,
        kind=OrderKind.PURCHASE,
        currency=currency,
        total_minor=sum(line.unit_price.minor * line.quantity for line in items),
        created_at=now,
        updated_at=now,
        delivered_at=None,
        allow_backorder=backorder_until is not None,
        backorder_until=backorder_until,
        hold_reason=None,
        review_reasons=None,
        failure_reason=None,
        waiting_since=None,
    )
    order.items = [
        OrderItem(
            product_id=line.product.id,
            quantity=line.quantity,
            unit_price_minor=line.unit_price.minor,
        )
        for line in items
    ]
    return order


def _check_stock(
    session: Session, partner: Partner, order: Order, products: dict[int, Product]
) -> None:
    if partner.is_sandbox:
        return
    for item in order.items:
        available = stock.available_count(session, item.product_id)
        free = available - stock.promises.reserved(available, products[item.product_id].set_aside)
        if free < item.quantity:
            raise stock.InsufficientStockError(
                f"{item.quantity} requested, {max(free, 0)} available",
                requested=item.quantity,
                available=max(free, 0),
            )


def _review_reasons(
    session: Session, partner: Partner, order: Order, limits: ReviewLimits | None
) -> list[str]:
    if limits is None:
        return []
    quantity = sum(item.quantity for item in order.items)
    usual = review.usual_quantity(session, partner.id) if limits.may_be_unusual(quantity) else None
    return review.reasons(quantity, total_of(order), limits, usual)


def _place_now(
    session: Session, partner: Partner, order: Order, products: dict[int, Product]
) -> None:
    """The synchronous path: allocation and payment in this transaction, or a refusal."""
    # Any refusal below rolls all of it back, so no one observes the intermediate states.
    order.advance(OrderStatus.PAID)
    order.advance(OrderStatus.DELIVERED)
    order.delivered_at = order.created_at
    _insert_order(session, order, partner.id)
    allocate_items(session, partner, order, products)
    notify_fulfilled(session, order)
    _pay(session, partner, order)


def _place_or_backorder(
    session: Session, partner: Partner, order: Order, products: dict[int, Product]
) -> None:
    """Deliver at once if stock allows; otherwise wait for stock with the money held."""
    _insert_order(session, order, partner.id)
    try:
        with session.begin_nested():
            allocate_items(session, partner, order, products, now=order.created_at)
    except stock.InsufficientStockError:
        hold(session, partner, order, HoldReason.STOCK, products)
        return
    mark_delivered(session, order, order.created_at)
    notify_fulfilled(session, order)
    _pay(session, partner, order)


def _pay(session: Session, partner: Partner, order: Order) -> None:
    """Debit the wallet: the order's last statement, because it locks the partner's wallet row
    until the commit, and every other order of the partner waits for that row meanwhile.

    At the order's time: paid the moment it is delivered."""
    wallet.debit_for_order(session, partner, order.id, total_of(order), order.created_at)


def allocate_items(
    session: Session,
    partner: Partner,
    order: Order,
    products: dict[int, Product],
    *,
    first_in_line: bool = False,
    now: datetime | None = None,
) -> None:
    """Give every item its codes, or raise InsufficientStockError (the caller rolls back).

    Codes set aside for waiting backorders are left alone unless this order is
    ``first_in_line`` (a backorder being filled in turn). Sandbox orders take no stock: their
    codes are synthetic.
    """
    if partner.is_sandbox:
        return
    for item in sorted(order.items, key=lambda item: item.product_id):  # one lock order
        stock.allocate(
            session,
            product_id=item.product_id,
            quantity=item.quantity,
            order_item_id=item.id,
            now=now or (order.created_at if order.status == OrderStatus.DELIVERED else utcnow()),
            backordered=0 if first_in_line else products[item.product_id].backordered,
        )


def hold(
    session: Session,
    partner: Partner,
    order: Order,
    reason: str,
    products: dict[int, Product],
    review_reasons: list[str] | None = None,
) -> None:
    """Keep an inserted order pending for ``reason`` (review or stock), its total held."""
    # Products before money, as a fill locks them, so the two cannot deadlock.
    if reason == HoldReason.STOCK:
        start_waiting_for_stock(session, partner, order)
    wallet.hold_for_order(session, partner, order.id, total_of(order))
    _set_hold(session, order, reason, "; ".join(review_reasons or []) or None)
    notify(session, order, ORDER_CREATED)
    if reason == HoldReason.REVIEW:
        notify(session, order, "order.review_required")


def start_waiting(session: Session, partner: Partner, order: Order) -> None:
    """An approved order that stock cannot fill yet waits for it (its money stays held)."""
    _set_hold(session, order, HoldReason.STOCK, None)
    start_waiting_for_stock(session, partner, order)


def _set_hold(session: Session, order: Order, reason: str | None, why: str | None) -> None:
    order.hold_reason = reason
    if why is not None:
        order.review_reasons = why
    order.updated_at = utcnow()
    if reason == HoldReason.STOCK:
        order.waiting_since = order.updated_at
    session.execute(
        update(Order)
        .where(Order.id == order.id)
        .values(
            hold_reason=reason,
            review_reasons=order.review_reasons,
            backorder_until=order.backorder_until,
            waiting_since=order.waiting_since,
            updated_at=order.updated_at,
        )
    )


def start_waiting_for_stock(session: Session, partner: Partner, order: Order) -> None:
    """The order waits for its codes: the stock it could not have stays on sale to others,
    and codes that arrive from now on are set aside for it, oldest backorder first
    (``stock.promises``).

    A retired product takes no new backorder (ProductRetiredError; the caller rolls back): the
    retirement and the promise update the same row, so one waits for the other's commit and
    either the backorder or the retirement is refused.
    """
    if partner.is_sandbox:
        return
    for item in sorted(order.items, key=lambda item: item.product_id):  # one lock order
        if not stock.promises.start_waiting(session, item.product_id, item.quantity):
            product = session.get_one(Product, item.product_id)
            session.refresh(product)
            catalog.check_on_sale(product)


def stop_waiting_for_stock(
    session: Session, partner: Partner, order: Order, *, filled: bool
) -> None:
    """The order no longer waits: ``filled`` (it takes what was set aside first) or failed
    (what was set aside stays for the backorders still waiting)."""
    if partner.is_sandbox:
        return
    for item in sorted(order.items, key=lambda item: item.product_id):  # one lock order
        stock.promises.stop_waiting(session, item.product_id, item.quantity, filled=filled)


def mark_delivered(session: Session, order: Order, now: datetime | None = None) -> None:
    if order.status == OrderStatus.PENDING:
        order.advance(OrderStatus.PAID)
    order.advance(OrderStatus.DELIVERED)
    order.hold_reason = None
    order.delivered_at = order.updated_at = now or utcnow()
    session.execute(
        update(Order)
        .where(Order.id == order.id)
        .values(
            status=OrderStatus.DELIVERED,
            hold_reason=None,
            delivered_at=order.delivered_at,
            updated_at=order.updated_at,
        )
    )


def fail(session: Session, partner: Partner, order: Order, reason: str) -> None:
    """Fail a pending order: its hold goes back to the wallet, its stock promise is dropped."""
    held = order.hold_reason is not None
    if order.hold_reason == HoldReason.STOCK:
        stop_waiting_for_stock(session, partner, order, filled=False)
    if held:
        wallet.release_hold(session, partner, order.id, total_of(order))
    order.advance(OrderStatus.FAILED)
    order.hold_reason = None
    order.failure_reason = reason
    order.updated_at = utcnow()
    session.execute(
        update(Order)
        .where(Order.id == order.id)
        .values(
            status=OrderStatus.FAILED,
            hold_reason=None,
            failure_reason=reason,
            updated_at=order.updated_at,
        )
    )
    notify(session, order, "order.failed")


def place_replacement(
    session: Session, partner_id: int, currency: str, quantities: dict[int, int]
) -> Order:
    """A free order delivering replacement codes (``quantities``: product id -> count).

    Allocated like any order, so a replacement is never a code already delivered; raises
    InsufficientStockError (the caller rolls back) when stock is short.
    """
    now = utcnow()
    order = Order(
        public_id=public_id(ORDER_PREFIX),
        partner_id=partner_id,
        client_order_id=None,
        status=OrderStatus.DELIVERED,
        kind=OrderKind.REPLACEMENT,
        currency=currency,
        total_minor=0,
        created_at=now,
        updated_at=now,
        delivered_at=now,
        allow_backorder=False,
    )
    order.items = [
        OrderItem(product_id=product_id, quantity=quantity, unit_price_minor=0)
        for product_id, quantity in sorted(quantities.items())
    ]
    _insert_order(session, order, partner_id)
    for item in order.items:
        stock.allocate(
            session,
            product_id=item.product_id,
            quantity=item.quantity,
            order_item_id=item.id,
            now=now,
        )
    notify_fulfilled(session, order)
    return order


def _insert_order(session: Session, order: Order, partner_id: int) -> None:
    """INSERT the order and its items, setting their ids on the in-memory objects.

    Plain Core inserts: on this hot path the ORM's unit of work cost more than the database.
    The objects stay out of the session; they carry the values the response is built from.
    """
    values = {
        column.key: getattr(order, column.key)
        for column in table_of(Order).columns
        if column.key != "id"
    }
    if order.client_order_id is None:
        order.id = _insert_returning_id(session, Order, values)
    else:
        try:
            with session.begin_nested():
                order.id = _insert_returning_id(session, Order, values)
        except IntegrityError:
            # Another request took this client_order_id between our check and our insert.
            existing = queries.find_by_client_order_id(session, partner_id, order.client_order_id)
            if existing is None:
                raise
            raise duplicate_client_order_id(existing) from None
    for item in order.items:
        item.order_id = order.id
        item.id = _insert_returning_id(
            session,
            OrderItem,
            {
                "order_id": order.id,
                "product_id": item.product_id,
                "quantity": item.quantity,
                "unit_price_minor": item.unit_price_minor,
            },
        )


_INSERT_RETURNING_ID: dict[type[Base], Any] = {
    model: insert(table_of(model)).returning(table_of(model).c.id) for model in (Order, OrderItem)
}


def _insert_returning_id(session: Session, model: type[Base], values: dict[str, Any]) -> int:
    return int(session.execute(_INSERT_RETURNING_ID[model], values).scalar_one())
