"""Giving codes to orders: each code delivered at most once, ever, and revealed only to its
order's partner."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import TextClause, bindparam, func, select, text
from sqlalchemy.orm import Session

from codeshelf.catalog import service as catalog
from codeshelf.catalog.models import Product
from codeshelf.kit.db import UTCDateTime
from codeshelf.kit.errors import ConflictError
from codeshelf.kit.money import Money
from codeshelf.kit.vault import Vault
from codeshelf.partners.models import Partner
from codeshelf.stock.models import Code, CodeState
from codeshelf.stock.service import promises


class InsufficientStockError(ConflictError):
    slug = "insufficient-stock"
    business_refusal = True


_SCAN = (
    "SELECT id FROM codes WHERE product_id = :product AND state = 'available'{floor} "
    "ORDER BY id LIMIT :quantity FOR UPDATE{skip}"
)

# The scan starts at the product's stock floor (see floors.py), not at the first code ever sold.
_FROM_FLOOR = (
    " AND id >= COALESCE((SELECT code_id FROM stock_floors WHERE product_id = :product), 0)"
)

_PICK_AND_CLAIM = (
    "UPDATE codes SET state = 'delivered', order_item_id = :item, delivered_at = :now "
    "WHERE id = ANY(ARRAY(<scan>))"
).replace("<scan>", _SCAN)

# What an order's pick reads on PostgreSQL, on its own: the bench and the tests measure it.
POSTGRESQL_SCAN = _SCAN.format(floor=_FROM_FLOOR, skip=" SKIP LOCKED")


# SQLite runs one write transaction at a time, so its pick needs no lock; and it drops index
# entries as it updates rows, so its scan needs no floor.
_SQLITE_PICK_AND_CLAIM = text(
    "UPDATE codes SET state = 'delivered', order_item_id = :item, delivered_at = :now "
    "WHERE id IN (SELECT id FROM codes WHERE product_id = :product "
    "AND state = 'available' ORDER BY id LIMIT :quantity)"
)


# PostgreSQL: first SKIP LOCKED from the floor, so concurrent orders take different codes
# instead of queueing on the same ones. Only if that comes up short (codes held by transactions
# that may yet roll back: an order refused for money must not make this one fail for stock; or
# a floor set too high), the claim is undone and retried from the first id, waiting for the
# held codes. A waiting pick holds no codes of its own and locks in id order, so pickers cannot
# deadlock each other.
_POSTGRESQL_SKIP_LOCKED = text(_PICK_AND_CLAIM.format(floor=_FROM_FLOOR, skip=" SKIP LOCKED"))


_POSTGRESQL_WAIT = text(_PICK_AND_CLAIM.format(floor="", skip=""))


def allocate(
    session: Session,
    *,
    product_id: int,
    quantity: int,
    order_item_id: int,
    now: datetime,
    backordered: int = 0,
) -> None:
    """Deliver ``quantity`` available codes to an order item, or raise InsufficientStockError.

    ``backordered`` is the product's, as the caller read it (0 for a backorder filled in turn,
    or a replacement): while backorders wait, the codes set aside for them are not taken
    (``promises``). The caller must roll back on refusal so nothing stays claimed.
    """
    if backordered > 0:
        # The caller's count may be stale: read what is set aside with the product locked, so
        # two orders cannot both take the last free code and eat into what a backorder was
        # promised.
        set_aside = int(
            session.scalar(
                select(Product.set_aside)
                .where(Product.id == product_id)
                # NO KEY: order items' foreign keys hold KEY SHARE locks on the product row, and
                # a plain FOR UPDATE would wait on them (two orders: a deadlock).
                .with_for_update(key_share=True)
            )
            or 0
        )
        available = available_count(session, product_id)
        free = available - promises.reserved(available, set_aside)
        if free < quantity:
            raise InsufficientStockError(
                f"{quantity} requested, {free} available",
                requested=quantity,
                available=free,
            )
    params = {"item": order_item_id, "now": now, "product": product_id, "quantity": quantity}
    if session.get_bind().dialect.name != "postgresql":
        claimed = _claim_codes(session, _SQLITE_PICK_AND_CLAIM, params)
    else:
        savepoint = session.begin_nested()
        claimed = _claim_codes(session, _POSTGRESQL_SKIP_LOCKED, params)
        if claimed == quantity:
            savepoint.commit()
            return
        savepoint.rollback()
        claimed = _claim_codes(session, _POSTGRESQL_WAIT, params)
    if claimed < quantity:
        raise InsufficientStockError(
            f"{quantity} requested, {claimed} available", requested=quantity, available=claimed
        )


def available_count(session: Session, product_id: int) -> int:
    return int(
        session.scalar(
            select(func.count()).where(
                Code.product_id == product_id, Code.state == CodeState.AVAILABLE
            )
        )
        or 0
    )


def _claim_codes(session: Session, statement: TextClause, params: dict[str, Any]) -> int:
    result = session.execute(statement.bindparams(bindparam("now", type_=UTCDateTime())), params)
    return int(result.rowcount)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class DeliveredCode:
    order_item_id: int
    code: str
    state: str  # delivered; voided once a claim replaced or refunded it; quarantined in dispute


def reveal(session: Session, vault: Vault, order_item_ids: list[int]) -> list[DeliveredCode]:
    rows = session.execute(
        select(Code.order_item_id, Code.sealed, Code.fingerprint, Code.key_id, Code.state)
        .where(Code.order_item_id.in_(order_item_ids))
        .order_by(Code.id)
    )
    return [
        DeliveredCode(item_id or 0, vault.open(sealed, fingerprint, key_id), state)
        for item_id, sealed, fingerprint, key_id, state in rows
    ]


SANDBOX_STOCK = 10_000  # codes a sandbox partner sees available per product (they are synthetic)


@dataclass(frozen=True)
class InventoryLine:
    product: Product
    price: Money
    available: int


def inventory(session: Session, partner: Partner) -> list[InventoryLine]:
    """Every product on sale, with this partner's price and the codes available now (0 stays
    listed; retired products do not).

    Codes set aside for waiting backorders are not available. The sandbox mirrors the live
    catalog and prices, with synthetic stock of SANDBOX_STOCK codes per product.
    """
    overrides = catalog.prices_for(session, partner.price_list_id)
    products = catalog.list_products(session, include_retired=False)
    if partner.is_sandbox:
        return [
            InventoryLine(product, catalog.price_of(product, overrides), SANDBOX_STOCK)
            for product in products
        ]
    counts = dict(
        session.execute(
            select(Code.product_id, func.count())
            .where(Code.state == CodeState.AVAILABLE)
            .group_by(Code.product_id)
        ).all()
    )
    return [
        InventoryLine(
            product,
            catalog.price_of(product, overrides),
            counts.get(product.id, 0)
            - promises.reserved(counts.get(product.id, 0), product.set_aside),
        )
        for product in products
    ]
