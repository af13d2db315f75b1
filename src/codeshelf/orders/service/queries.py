"""Reading orders: one order, a page of them, and the audited reveal of its codes.

Another partner's order is indistinguishable from a missing one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import Session

from codeshelf.audit import service as audit
from codeshelf.catalog.models import Product
from codeshelf.kit.db import as_day, utc_day
from codeshelf.kit.errors import ConflictError, InvalidCursorError, NotFoundError
from codeshelf.kit.ids import is_public_id
from codeshelf.kit.vault import Vault
from codeshelf.orders import magic
from codeshelf.orders.models import (
    ORDER_PREFIX,
    HoldReason,
    Order,
    OrderKind,
    OrderStatus,
)
from codeshelf.partners.models import ApiKey, Partner
from codeshelf.stock import service as stock


class OrderNotFoundError(NotFoundError):
    slug = "order-not-found"


class CodesNotReadyError(ConflictError):
    slug = "codes-not-ready"


def find_by_client_order_id(
    session: Session, partner_id: int, client_order_id: str
) -> Order | None:
    return session.scalar(
        select(Order).where(
            Order.partner_id == partner_id, Order.client_order_id == client_order_id
        )
    )


def get_order(session: Session, partner_id: int, order_public_id: str) -> Order:
    """The partner's order; another partner's order is indistinguishable from a missing one."""
    if not is_public_id(ORDER_PREFIX, order_public_id):
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
    created_since: datetime | None = None,
    created_before: datetime | None = None,
) -> list[Order]:
    """Newest first; ``before`` is the cursor: the id of the last order of the previous page."""
    query = select(Order).where(Order.partner_id == partner_id).order_by(Order.id.desc())
    if before is not None:
        if not is_public_id(ORDER_PREFIX, before):
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
    if created_since is not None:
        query = query.where(Order.created_at >= created_since)
    if created_before is not None:
        query = query.where(Order.created_at < created_before)
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
    session: Session,
    vault: Vault,
    partner: Partner,
    api_key: ApiKey | None,
    order_public_id: str,
    actor: str | None = None,
) -> tuple[Order, list[RevealedCode]]:
    """Decrypt an order's codes for its partner; every reveal is written to the audit log,
    naming the API key, or the ``actor`` (a portal member) who asked."""
    order, codes = delivered_codes(session, vault, partner, order_public_id)
    audit.record(
        session,
        actor=actor or f"partner:{partner.public_id}",
        action="codes.reveal",
        partner_public_id=partner.public_id,
        api_key_public_id=api_key.public_id if api_key else None,
        subject=order.public_id,
        count=len(codes),
    )
    return order, codes


def reveal_one_code(
    session: Session,
    vault: Vault,
    partner: Partner,
    order_public_id: str,
    position: int,
    actor: str,
) -> RevealedCode:
    """One code of an order (by its position in the order), for someone filing a claim on it
    who may not see the whole order's; written to the audit log like any reveal."""
    order, codes = delivered_codes(session, vault, partner, order_public_id)
    if not 0 <= position < len(codes):
        raise OrderNotFoundError(f"order {order.public_id} has no code {position}")
    audit.record(
        session,
        actor=actor,
        action="codes.reveal",
        partner_public_id=partner.public_id,
        subject=order.public_id,
        count=1,
        details={"position": position, "for": "claim"},
    )
    return codes[position]


def delivered_codes(
    session: Session, vault: Vault, partner: Partner, order_public_id: str
) -> tuple[Order, list[RevealedCode]]:
    """An order's codes in plaintext, for the server's own use (filing a claim on some of
    them): never shown, so not a reveal. What a person sees goes through ``reveal_codes``."""
    order = get_order(session, partner.id, order_public_id)
    if order.status != OrderStatus.DELIVERED:
        raise CodesNotReadyError(f"order {order.public_id} is {order.status}, not delivered")
    sku_of_item = {item.id: item.product_id for item in order.items}
    products = products_by_id(session, set(sku_of_item.values()))
    codes = (
        _test_codes(order)
        if partner.is_sandbox
        else stock.reveal(session, vault, list(sku_of_item))
    )
    return order, [
        RevealedCode(products[sku_of_item[code.order_item_id]].sku, code.code, code.state)
        for code in codes
    ]


def _test_codes(order: Order) -> list[stock.DeliveredCode]:
    return [
        stock.DeliveredCode(
            item.id, magic.synthetic_code(order.public_id, item.id, index), OrderStatus.DELIVERED
        )
        for item in order.items
        for index in range(item.quantity)
    ]


def public_ids(session: Session, order_ids: set[int]) -> dict[int, str]:
    """The public ids of these orders, by internal id."""
    if not order_ids:
        return {}
    rows = session.execute(select(Order.id, Order.public_id).where(Order.id.in_(order_ids)))
    return dict(rows.all())


def orders_of_the_day(
    session: Session,
    partner_id: int,
    start: datetime,
    end: datetime,
    moved: Select[int | None],
) -> list[Order]:
    """The partner's orders created in [start, end), and older ones among ``moved`` (the ids of
    orders whose money moved then), oldest first."""
    return list(
        session.scalars(
            select(Order)
            .where(
                Order.partner_id == partner_id,
                or_(and_(Order.created_at >= start, Order.created_at < end), Order.id.in_(moved)),
            )
            .order_by(Order.id)
        )
    )


def orders_per_day(session: Session, since: datetime) -> dict[date, int]:
    """How many live purchase orders were placed each day (UTC) since ``since``, every partner."""
    day = utc_day(session, Order.created_at)
    rows = session.execute(
        select(day, func.count())
        .join(Partner, Partner.id == Order.partner_id)
        .where(
            Order.created_at >= since,
            Order.kind == OrderKind.PURCHASE,
            Partner.sandbox_of_id.is_(None),
        )
        .group_by(day)
    )
    return {as_day(when): int(count) for when, count in rows}


def delivered_totals(
    session: Session, partner_id: int, start: datetime, end: datetime
) -> dict[str, int]:
    """What the partner's orders delivered in [start, end) cost, per currency (minor units)."""
    rows = session.execute(
        select(Order.currency, func.sum(Order.total_minor))
        .where(
            Order.partner_id == partner_id,
            Order.status == OrderStatus.DELIVERED,
            Order.delivered_at >= start,
            Order.delivered_at < end,
        )
        .group_by(Order.currency)
    )
    return {currency: int(total) for currency, total in rows}


def counts_by_state(session: Session) -> dict[str, int]:
    """Orders per state, a pending order named by what it waits for (``review`` or
    ``backorder``): every state listed, zero or not (for the metrics scrape)."""
    waiting: dict[str | None, str] = {HoldReason.REVIEW: "review", HoldReason.STOCK: "backorder"}
    counts = {status.value: 0 for status in OrderStatus if status != OrderStatus.PENDING} | {
        "pending": 0,
        "review": 0,
        "backorder": 0,
    }
    rows = session.execute(
        select(Order.status, Order.hold_reason, func.count()).group_by(
            Order.status, Order.hold_reason
        )
    )
    for status, hold, count in rows:
        name = waiting.get(hold, status) if status == OrderStatus.PENDING else status
        counts[name] = counts.get(name, 0) + int(count)
    return counts
