"""Placing bulk orders and retrieving their codes.

An order here is synchronous and all-or-nothing: in one transaction it is priced, codes are
allocated (stock is checked before money), the wallet is debited, and the order is delivered.
The caller runs ``place_order`` inside a savepoint, so a refusal leaves nothing behind.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from codeshelf.audit import service as audit
from codeshelf.catalog.models import PartnerPrice, Product
from codeshelf.kit.clock import utcnow
from codeshelf.kit.db import Base, table_of
from codeshelf.kit.errors import ConflictError, InvalidCursorError, InvalidInputError, NotFoundError
from codeshelf.kit.ids import public_id
from codeshelf.kit.money import InvalidMoneyError, Money
from codeshelf.kit.vault import Vault
from codeshelf.orders import magic, review
from codeshelf.orders.models import (
    DELIVERED,
    FAILED,
    PAID,
    PENDING,
    PURCHASE,
    REPLACEMENT,
    REVIEW,
    STOCK,
    Order,
    OrderItem,
)
from codeshelf.orders.review import ReviewLimits
from codeshelf.partners.models import ApiKey, Partner
from codeshelf.stock import service as stock
from codeshelf.stock.models import Code
from codeshelf.wallet import service as wallet
from codeshelf.wallet.models import (
    HELD,
    HOLD,
    ORDER,
    RELEASE,
    WALLET,
    Account,
    LedgerTransaction,
    Posting,
)
from codeshelf.webhooks import service as webhooks

ORDER_ID = re.compile(r"ord_[0-9a-f]{20}")
# A sandbox backorder forced by its client_order_id, with no deadline of its own, waits this long.
DEFAULT_SANDBOX_BACKORDER = timedelta(hours=1)


# Shown with a refusal whose region contradicts the product's, for the reseller's customer.
REGION_MISMATCH_MESSAGE = (
    "This card is for a different PlayStation Store region than the one you chose. Please "
    "check your account's region and choose a matching card."
)


class UnknownProductError(InvalidInputError):
    slug = "unknown-product"


class MixedCurrencyError(InvalidInputError):
    slug = "mixed-currency"


class OrderNotFoundError(NotFoundError):
    slug = "order-not-found"


class DuplicateClientOrderIdError(ConflictError):
    slug = "duplicate-client-order-id"
    business_refusal = True


class CodesNotReadyError(ConflictError):
    slug = "codes-not-ready"


@dataclass(frozen=True)
class ItemRequest:
    """One requested line: a product id, or a region and denomination (and optionally more)."""

    quantity: int
    pointer: str  # JSON Pointer of this line in the request ("#/items/0" or "#")
    product_id: str | None = None
    region: str | None = None
    denomination: Decimal | None = None
    currency: str | None = None
    platform: str | None = None


@dataclass(frozen=True)
class PricedItem:
    product: Product
    quantity: int
    unit_price: Money


def _field(pointer: str, name: str) -> str:
    return f"{pointer.rstrip('/')}/{name}" if pointer != "#" else f"#/{name}"


def _matches_denomination(product: Product, item: ItemRequest) -> bool:
    if item.currency is not None and item.currency.upper() != product.face_currency:
        return False
    if item.platform is not None and item.platform.lower() != product.platform:
        return False
    try:
        face = Money.parse(item.denomination or Decimal(0), product.face_currency)
    except InvalidMoneyError:
        return False
    return face.minor == product.face_value_minor


def _priced_products(
    session: Session, partner_id: int, condition: ColumnElement[bool]
) -> list[tuple[Product, Money]]:
    """Products matching ``condition``, each with this partner's price (one query)."""
    rows = session.execute(
        select(Product, PartnerPrice.price_minor)
        .outerjoin(
            PartnerPrice,
            and_(PartnerPrice.product_id == Product.id, PartnerPrice.partner_id == partner_id),
        )
        .where(condition)
    ).all()
    return [
        (product, Money(override or product.price_minor, product.price_currency))
        for product, override in rows
    ]


def _check_consistent(product: Product, item: ItemRequest) -> None:
    """A line naming a product may repeat its region and denomination, but not contradict them."""
    if item.region is not None and item.region.upper() != product.region:
        raise UnknownProductError(
            f"{product.sku} is a {product.region} product, not {item.region}",
            pointer=_field(item.pointer, "region"),
            customer_message=REGION_MISMATCH_MESSAGE,
        )
    if item.denomination is not None and not _matches_denomination(product, item):
        raise UnknownProductError(
            f"{product.sku} does not match denomination {item.denomination} "
            f"{item.currency or ''}".rstrip(),
            pointer=_field(item.pointer, "denomination"),
        )
    if item.currency is not None and item.currency.upper() != product.face_currency:
        raise UnknownProductError(
            f"{product.sku} is denominated in {product.face_currency}",
            pointer=_field(item.pointer, "currency"),
        )
    if item.platform is not None and item.platform.lower() != product.platform:
        raise UnknownProductError(
            f"{product.sku} is a {product.platform} product",
            pointer=_field(item.pointer, "platform"),
        )


def _price_item(session: Session, partner_id: int, item: ItemRequest) -> PricedItem:
    if item.product_id is not None:
        found = _priced_products(session, partner_id, Product.sku == item.product_id)
        if not found:
            raise UnknownProductError(
                f"no product {item.product_id!r}", pointer=_field(item.pointer, "product_id")
            )
        product, price = found[0]
        _check_consistent(product, item)
        return PricedItem(product, item.quantity, price)
    region = (item.region or "").upper()
    candidates = _priced_products(session, partner_id, Product.region == region)
    if not candidates:
        raise UnknownProductError(
            f"no product for region {item.region!r}", pointer=_field(item.pointer, "region")
        )
    matches = [(p, price) for p, price in candidates if _matches_denomination(p, item)]
    if not matches:
        raise UnknownProductError(
            f"no {region} product with denomination {item.denomination}",
            pointer=_field(item.pointer, "denomination"),
        )
    if len(matches) > 1:
        raise UnknownProductError(
            f"{len(matches)} products match {region} {item.denomination}; name one with "
            f"product_id ({', '.join(p.sku for p, _ in matches)})",
            pointer=_field(item.pointer, "denomination"),
        )
    product, price = matches[0]
    return PricedItem(product, item.quantity, price)


def price_items(session: Session, partner: Partner, items: list[ItemRequest]) -> list[PricedItem]:
    """Resolve and price every line; refuses unknown products and orders in two currencies."""
    priced = [_price_item(session, partner.price_list_id, item) for item in items]
    currencies = {line.unit_price.currency for line in priced}
    if len(currencies) > 1:
        raise MixedCurrencyError(
            f"an order is paid in one currency; these items are priced in {sorted(currencies)}",
            pointer="#/items",
        )
    return priced


def find_by_client_order_id(
    session: Session, partner_id: int, client_order_id: str
) -> Order | None:
    return session.scalar(
        select(Order).where(
            Order.partner_id == partner_id, Order.client_order_id == client_order_id
        )
    )


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
        existing = find_by_client_order_id(session, partner.id, client_order_id)
        if existing is not None:
            raise duplicate_client_order_id(existing)
    order = _new_order(partner, items, client_order_id, backorder_until)
    forced = magic.forced_outcome(client_order_id) if partner.is_sandbox else None
    why = _review_reasons(session, partner, order, limits)
    if forced == magic.REVIEW:
        why.append("sandbox: client_order_id asks for review")
    products = {line.product.id: line.product for line in items}
    if forced == magic.FAIL:
        _insert_order(session, order, partner.id)
        notify(session, order, ORDER_CREATED)
        fail(session, partner, order, "sandbox_forced_failure")
    elif why:
        if backorder_until is None:  # refuse now what approval could not deliver either
            _check_stock(session, partner, order, products)
        _insert_order(session, order, partner.id)
        hold(session, partner, order, REVIEW, products, why)
    elif forced == magic.BACKORDER:
        order.allow_backorder = True
        order.backorder_until = backorder_until or utcnow() + DEFAULT_SANDBOX_BACKORDER
        _insert_order(session, order, partner.id)
        hold(session, partner, order, STOCK, products)
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
        public_id=public_id("ord"),
        partner_id=partner.id,
        client_order_id=client_order_id,
        status=PENDING,
        kind=PURCHASE,
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
        free = (
            stock.available_count(session, item.product_id) - products[item.product_id].backordered
        )
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


def total_of(order: Order) -> Money:
    return Money(order.total_minor, order.currency)


def _place_now(
    session: Session, partner: Partner, order: Order, products: dict[int, Product]
) -> None:
    """The synchronous path: allocation and payment in this transaction, or a refusal."""
    # Any refusal below rolls all of it back, so no one observes the intermediate states.
    order.advance(PAID)
    order.advance(DELIVERED)
    order.delivered_at = order.created_at
    _insert_order(session, order, partner.id)
    allocate_items(session, partner, order, products)
    # Last: it locks the wallet. At the order's time: paid the moment it is delivered.
    wallet.debit_for_order(session, partner, order.id, total_of(order), order.created_at)
    notify_fulfilled(session, order)


def _place_or_backorder(
    session: Session, partner: Partner, order: Order, products: dict[int, Product]
) -> None:
    """Deliver at once if stock allows; otherwise wait for stock with the money held."""
    _insert_order(session, order, partner.id)
    try:
        with session.begin_nested():
            allocate_items(session, partner, order, products, now=order.created_at)
    except stock.InsufficientStockError:
        hold(session, partner, order, STOCK, products)
        return
    wallet.debit_for_order(session, partner, order.id, total_of(order), order.created_at)
    mark_delivered(session, order, order.created_at)
    notify_fulfilled(session, order)


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

    Codes promised to waiting backorders are left alone unless this order is ``first_in_line``
    (a backorder being filled in turn). Sandbox orders take no stock: their codes are
    synthetic.
    """
    if partner.is_sandbox:
        return
    for item in sorted(order.items, key=lambda item: item.product_id):  # one lock order
        stock.allocate(
            session,
            product_id=item.product_id,
            quantity=item.quantity,
            order_item_id=item.id,
            now=now or (order.created_at if order.status == DELIVERED else utcnow()),
            reserved=0 if first_in_line else products[item.product_id].backordered,
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
    if reason == STOCK:
        reserve_stock(session, partner, order, +1)
    wallet.hold_for_order(session, partner, order.id, total_of(order))
    _set_hold(session, order, reason, "; ".join(review_reasons or []) or None)
    notify(session, order, ORDER_CREATED)
    if reason == REVIEW:
        notify(session, order, "order.review_required")


def start_waiting(session: Session, partner: Partner, order: Order) -> None:
    """An approved order that stock cannot fill yet waits for it (its money stays held)."""
    _set_hold(session, order, STOCK, None)
    reserve_stock(session, partner, order, +1)


def _set_hold(session: Session, order: Order, reason: str | None, why: str | None) -> None:
    order.hold_reason = reason
    if why is not None:
        order.review_reasons = why
    order.updated_at = utcnow()
    if reason == STOCK:
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


def reserve_stock(session: Session, partner: Partner, order: Order, sign: int) -> None:
    """Promise (+1) or stop promising (-1) stock to a waiting backorder."""
    if partner.is_sandbox:
        return
    for item in sorted(order.items, key=lambda item: item.product_id):  # one lock order
        session.execute(
            update(Product)
            .where(Product.id == item.product_id)
            .values(backordered=Product.backordered + sign * item.quantity)
        )


def mark_delivered(session: Session, order: Order, now: datetime | None = None) -> None:
    if order.status == PENDING:
        order.advance(PAID)
    order.advance(DELIVERED)
    order.hold_reason = None
    order.delivered_at = order.updated_at = now or utcnow()
    session.execute(
        update(Order)
        .where(Order.id == order.id)
        .values(
            status=DELIVERED,
            hold_reason=None,
            delivered_at=order.delivered_at,
            updated_at=order.updated_at,
        )
    )


def fail(session: Session, partner: Partner, order: Order, reason: str) -> None:
    """Fail a pending order: its hold goes back to the wallet, its stock promise is dropped."""
    held = order.hold_reason is not None
    if order.hold_reason == STOCK:
        reserve_stock(session, partner, order, -1)
    if held:
        wallet.release_hold(session, partner, order.id, total_of(order))
    order.advance(FAILED)
    order.hold_reason = None
    order.failure_reason = reason
    order.updated_at = utcnow()
    session.execute(
        update(Order)
        .where(Order.id == order.id)
        .values(status=FAILED, hold_reason=None, failure_reason=reason, updated_at=order.updated_at)
    )
    notify(session, order, "order.failed")


ORDER_CREATED = "order.created"


def event_fields(order: Order) -> dict[str, Any]:
    """What every order event says about the order (seed 003: order id and status, and more)."""
    return {
        "order_id": order.public_id,
        "client_order_id": order.client_order_id,
        "kind": order.kind,
        "status": order.status,
        "review_required": order.review_required,
        "backorder_until": None
        if order.backorder_until is None
        else order.backorder_until.isoformat(),
        "failure_reason": order.failure_reason,
        "total": total_of(order).as_json(),
    }


def notify(session: Session, order: Order, event_type: str) -> None:
    webhooks.emit(session, order.partner_id, event_type, event_fields(order))


def notify_fulfilled(session: Session, order: Order, *, created: bool = True) -> None:
    """The outbox events of an order delivered now (created, too, unless it waited)."""
    fields = event_fields(order)
    events = [("order.paid", {**fields, "status": PAID}), ("order.fulfilled", fields)]
    if created:
        events.insert(0, (ORDER_CREATED, {**fields, "status": PENDING}))
    webhooks.emit_many(session, order.partner_id, events)


def place_replacement(
    session: Session, partner_id: int, currency: str, quantities: dict[int, int]
) -> Order:
    """A free order delivering replacement codes (``quantities``: product id -> count).

    Allocated like any order, so a replacement is never a code already delivered; raises
    InsufficientStockError (the caller rolls back) when stock is short.
    """
    now = utcnow()
    order = Order(
        public_id=public_id("ord"),
        partner_id=partner_id,
        client_order_id=None,
        status=DELIVERED,
        kind=REPLACEMENT,
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
            existing = find_by_client_order_id(session, partner_id, order.client_order_id)
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


def get_order(session: Session, partner_id: int, order_public_id: str) -> Order:
    """The partner's order; another partner's order is indistinguishable from a missing one."""
    if not ORDER_ID.fullmatch(order_public_id):
        raise OrderNotFoundError(f"no order {order_public_id!r}")
    order = session.scalar(
        select(Order).where(Order.public_id == order_public_id, Order.partner_id == partner_id)
    )
    if order is None:
        raise OrderNotFoundError(f"no order {order_public_id}")
    return order


def list_orders(
    session: Session,
    partner_id: int,
    *,
    before: str | None,
    limit: int,
    status: str | None,
    client_order_id: str | None,
    updated_since: datetime | None = None,
) -> list[Order]:
    """Newest first; ``before`` is the cursor: the id of the last order of the previous page."""
    query = select(Order).where(Order.partner_id == partner_id).order_by(Order.id.desc())
    if before is not None:
        if not ORDER_ID.fullmatch(before):
            raise InvalidCursorError()
        position = session.scalar(
            select(Order.id).where(Order.public_id == before, Order.partner_id == partner_id)
        )
        if position is None:
            raise InvalidCursorError()
        query = query.where(Order.id < position)
    if status is not None:
        query = query.where(Order.status == status)
    if client_order_id is not None:
        query = query.where(Order.client_order_id == client_order_id)
    if updated_since is not None:
        query = query.where(Order.updated_at >= updated_since)
    return list(session.scalars(query.limit(limit)))


def products_by_id(session: Session, product_ids: set[int]) -> dict[int, Product]:
    rows = session.scalars(select(Product).where(Product.id.in_(product_ids)))
    return {product.id: product for product in rows}


@dataclass(frozen=True)
class RevealedCode:
    product_id: str
    code: str
    state: str


def reveal_codes(
    session: Session, vault: Vault, partner: Partner, api_key: ApiKey, order_public_id: str
) -> tuple[Order, list[RevealedCode]]:
    """Decrypt an order's codes for its partner; every reveal is written to the audit log."""
    order = get_order(session, partner.id, order_public_id)
    if order.status != DELIVERED:
        raise CodesNotReadyError(f"order {order.public_id} is {order.status}, not delivered")
    sku_of_item = {item.id: item.product_id for item in order.items}
    products = products_by_id(session, set(sku_of_item.values()))
    codes = (
        _test_codes(order)
        if partner.is_sandbox
        else stock.reveal(session, vault, list(sku_of_item))
    )
    audit.record(
        session,
        actor=f"partner:{partner.public_id}",
        action="codes.reveal",
        partner_public_id=partner.public_id,
        api_key_public_id=api_key.public_id,
        subject=order.public_id,
        count=len(codes),
    )
    return order, [
        RevealedCode(products[sku_of_item[code.order_item_id]].sku, code.code, code.state)
        for code in codes
    ]


def _test_codes(order: Order) -> list[stock.DeliveredCode]:
    return [
        stock.DeliveredCode(
            item.id, magic.synthetic_code(order.public_id, item.id, index), DELIVERED
        )
        for item in order.items
        for index in range(item.quantity)
    ]


def check(session: Session) -> list[str]:
    """Violations: an order's money (paid, held or released) or codes not matching its status;
    debits without orders; stock promised to backorders that do not exist."""
    return _money_problems(session) + _code_problems(session) + _promise_problems(session)


def _money_problems(session: Session) -> list[str]:
    moved = (
        select(
            LedgerTransaction.order_id,
            func.sum(case((Account.kind == WALLET, Posting.amount_minor), else_=0)).label("paid"),
            func.sum(case((Account.kind == HELD, Posting.amount_minor), else_=0)).label("held"),
        )
        .join(Posting, Posting.transaction_id == LedgerTransaction.id)
        .join(Account, Account.id == Posting.account_id)
        .where(LedgerTransaction.kind.in_((ORDER, HOLD, RELEASE)))
        .group_by(LedgerTransaction.order_id)
        .subquery()
    )
    rows = session.execute(
        select(
            Order.public_id,
            Order.status,
            Order.hold_reason,
            Order.total_minor,
            moved.c.paid,
            moved.c.held,
        ).outerjoin(moved, moved.c.order_id == Order.id)
    )
    problems = []
    for order_id, status, hold_reason, total, paid, held in rows:
        expected = {
            DELIVERED: (-total, 0),
            FAILED: (0, 0),
            PENDING: (-total, total) if hold_reason else (0, 0),
        }.get(status)
        actual = (paid or 0, held or 0)
        if expected is not None and actual != expected:
            problems.append(
                f"order {order_id} is {status} (total {total}) but its wallet moved {actual[0]} "
                f"and its hold holds {actual[1]}"
            )
    orphans = session.scalar(
        select(func.count())
        .select_from(LedgerTransaction)
        .outerjoin(Order, Order.id == LedgerTransaction.order_id)
        .where(LedgerTransaction.kind.in_((ORDER, HOLD, RELEASE)), Order.id.is_(None))
    )
    if orphans:
        problems.append(f"{orphans} order debits point to no order")
    return problems


def _code_problems(session: Session) -> list[str]:
    undelivered = session.execute(
        select(Order.public_id, OrderItem.id, OrderItem.quantity, func.count(Code.id))
        .join(OrderItem, OrderItem.order_id == Order.id)
        .join(Partner, Partner.id == Order.partner_id)
        .outerjoin(Code, Code.order_item_id == OrderItem.id)
        .where(Order.status == DELIVERED, Partner.sandbox_of_id.is_(None))
        .group_by(Order.public_id, OrderItem.id, OrderItem.quantity)
    )
    return [
        f"order {order_id}: {quantity} codes ordered, {codes} delivered"
        for order_id, _item, quantity, codes in undelivered
        if codes != quantity
    ]


def _promise_problems(session: Session) -> list[str]:
    waiting = (
        select(OrderItem.product_id, func.sum(OrderItem.quantity).label("quantity"))
        .join(Order, Order.id == OrderItem.order_id)
        .join(Partner, Partner.id == Order.partner_id)
        .where(Order.hold_reason == STOCK, Partner.sandbox_of_id.is_(None))
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
