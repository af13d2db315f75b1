"""Delivered codes as claims see them: found by fingerprint on an order's items, locked while a
claim is filed or decided, moved between delivered, quarantined and voided, traced to their
batch. Claims never read the codes table themselves."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, select, update
from sqlalchemy.orm import Session

from codeshelf.catalog.models import Product
from codeshelf.stock.models import Batch, Code, CodeState


@dataclass(frozen=True)
class StockCode:
    """One code as another domain may know it: never its secret."""

    id: int
    order_item_id: int | None
    last4: str
    state: str


def find_on_items(
    session: Session, fingerprints: Collection[bytes], order_item_ids: Collection[int]
) -> StockCode | None:
    """The code with one of these fingerprints delivered to one of these order items."""
    row = session.execute(
        select(Code.id, Code.order_item_id, Code.last4, Code.state).where(
            Code.fingerprint.in_(fingerprints), Code.order_item_id.in_(order_item_ids)
        )
    ).first()
    return None if row is None else StockCode(*row)


def lock_codes(session: Session, code_ids: Collection[int]) -> None:
    """Lock the codes' rows, in id order, until commit (PostgreSQL; SQLite writes one at a
    time): concurrent work on overlapping codes queues instead of deadlocking."""
    session.execute(
        select(Code.id).where(Code.id.in_(code_ids)).order_by(Code.id).with_for_update()
    )


def move_codes(
    session: Session, code_ids: Collection[int], to: CodeState, *, expect: CodeState
) -> bool:
    """Move the codes from ``expect`` to ``to``; False (nothing moved that the caller may keep)
    unless every one of them was in ``expect``."""
    moved = session.execute(
        update(Code).where(Code.id.in_(code_ids), Code.state == expect).values(state=to)
    )
    return int(moved.rowcount) == len(code_ids)  # type: ignore[attr-defined]


def delivery_positions(session: Session, order_item_ids: Collection[int]) -> dict[int, int]:
    """Each code delivered on these order items, by id, with its place (0, 1, …) in the list
    ``reveal`` gives for them: the position a one-code reveal of an order names."""
    rows = session.scalars(
        select(Code.id).where(Code.order_item_id.in_(order_item_ids)).order_by(Code.id)
    )
    return {code_id: position for position, code_id in enumerate(rows)}


@dataclass(frozen=True)
class Provenance:
    code_id: int
    batch_id: int
    sku: str
    batch: str
    supplier: str | None
    imported_at: datetime
    delivered_at: datetime | None
    state: str


def provenance(session: Session, code_ids: Collection[int]) -> dict[int, Provenance]:
    """Where each code came from (product, batch, supplier) and what became of it."""
    rows = session.execute(
        select(
            Code.id,
            Code.batch_id,
            Product.sku,
            Batch.reference,
            Batch.supplier,
            Batch.imported_at,
            Code.delivered_at,
            Code.state,
        )
        .join(Batch, Batch.id == Code.batch_id)
        .join(Product, Product.id == Code.product_id)
        .where(Code.id.in_(code_ids))
    )
    return {row[0]: Provenance(*row) for row in rows}


def codes_of_batch(batch_id: int) -> Select[int]:
    """The ids of a batch's codes, as a subquery to filter by."""
    return select(Code.id).where(Code.batch_id == batch_id)
