"""What the operator sees of stock: codes per product and state, quality per batch and supplier,
products running low, and pulling a bad batch out of sale and putting it back."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, select, text
from sqlalchemy.orm import Session

from codeshelf.audit import service as audit
from codeshelf.catalog.models import Product
from codeshelf.kit.errors import NotFoundError
from codeshelf.stock.models import Batch, Code, CodeState
from codeshelf.stock.service import floors, promises


def summary(session: Session) -> list[dict[str, Any]]:
    """Codes per product and state; every state is listed, zero or not."""
    counts: dict[tuple[int, str], int] = {
        (product_id, state): count
        for product_id, state, count in session.execute(
            select(Code.product_id, Code.state, func.count()).group_by(Code.product_id, Code.state)
        )
    }
    products = session.scalars(select(Product).order_by(Product.sku))
    result = []
    for product in products:
        states = {state.value: counts.get((product.id, state), 0) for state in CodeState}
        result.append({"sku": product.sku, **states, "total": sum(states.values())})
    return result


class BatchNotFoundError(NotFoundError):
    slug = "batch-not-found"


def _batch(session: Session, reference: str) -> Batch:
    # A NUL (which PostgreSQL refuses in text) is in no reference: not looked up.
    found = (
        None
        if "\x00" in reference
        else session.scalar(select(Batch).where(Batch.reference == reference))
    )
    if found is None:
        raise BatchNotFoundError(f"no batch {reference}")
    return found


def quarantine_batch(session: Session, reference: str, actor: str = audit.OPERATOR_CLI) -> int:
    """Pull a batch's remaining available codes out of sale; returns how many.

    They stay in stock, accounted for as quarantined; delivered codes are untouched.
    """
    batch = _batch(session, reference)
    moved = session.execute(
        text(
            "UPDATE codes SET state = 'quarantined' WHERE batch_id = :batch AND state = 'available'"
        ),
        {"batch": batch.id},
    )
    count = int(moved.rowcount)  # type: ignore[attr-defined]
    audit.record(session, actor=actor, action="stock.quarantine", subject=reference, count=count)
    return count


@dataclass(frozen=True)
class Released:
    batch: str
    sku: str
    released: int  # quarantined codes never delivered: back to available
    kept: int  # quarantined codes on an order (a claim's dispute owns them): still quarantined


_RELEASE = text(
    "UPDATE codes SET state = 'available' "
    "WHERE batch_id = :batch AND state = 'quarantined' AND order_item_id IS NULL"
)


def release_batch(session: Session, reference: str, actor: str = audit.OPERATOR_CLI) -> Released:
    """End a batch's quarantine: its quarantined codes that were never delivered (no order item:
    those ``quarantine_batch`` pulled) are available again. Codes on an order stay quarantined:
    an escalated claim quarantined them and only its decision moves them (they could never go
    back to sale anyway: a code is delivered at most once).

    The product's stock floor is lowered to the batch, as an import lowers it. The caller then
    serves what waits for stock (``worker.after_stock_arrives``), as after an import.
    """
    batch = _batch(session, reference)
    moved = session.execute(_RELEASE, {"batch": batch.id})
    released = int(moved.rowcount)  # type: ignore[attr-defined]
    kept = int(
        session.scalar(
            select(func.count()).where(
                Code.batch_id == batch.id, Code.state == CodeState.QUARANTINED
            )
        )
        or 0
    )
    if released:
        floors.include_batch(session, batch.product_id, batch.id)
        promises.arrived(session, batch.product_id, released)
    sku = session.scalar(select(Product.sku).where(Product.id == batch.product_id)) or ""
    audit.record(
        session,
        actor=actor,
        action="stock.release",
        subject=reference,
        count=released,
        details={"sku": sku, "kept_quarantined": kept},
    )
    return Released(reference, sku, released, kept)


@dataclass(frozen=True)
class BatchQuality:
    reference: str
    sku: str
    supplier: str | None
    imported: int
    available: int
    delivered: int  # ever delivered to a partner (voided and claimed codes included)
    claimed: int  # distinct codes named in any claim
    defective: int  # codes whose claim was approved (replaced or refunded)
    quarantined: int

    @property
    def claim_rate(self) -> float:
        """Of the codes delivered, the share named in a claim (0 before any delivery)."""
        return _rate(self.claimed, self.delivered)

    @property
    def defect_rate(self) -> float:
        """Of the codes delivered, the share confirmed defective (an approved claim)."""
        return _rate(self.defective, self.delivered)


def _rate(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


@dataclass(frozen=True)
class SupplierQuality:
    """A supplier's batches added up (``supplier`` None: batches imported without one)."""

    supplier: str | None
    batches: int
    imported: int
    available: int
    delivered: int
    claimed: int
    defective: int
    quarantined: int

    @property
    def claim_rate(self) -> float:
        return _rate(self.claimed, self.delivered)

    @property
    def defect_rate(self) -> float:
        return _rate(self.defective, self.delivered)


def supplier_quality(batches: list[BatchQuality]) -> list[SupplierQuality]:
    """``batch_quality``'s rows added up per supplier, by supplier name (none last); the rates
    are over the supplier's codes, not an average of its batches' rates."""
    grouped: dict[str | None, list[BatchQuality]] = {}
    for row in batches:
        grouped.setdefault(row.supplier, []).append(row)
    return [
        SupplierQuality(
            supplier=supplier,
            batches=len(rows),
            imported=sum(row.imported for row in rows),
            available=sum(row.available for row in rows),
            delivered=sum(row.delivered for row in rows),
            claimed=sum(row.claimed for row in rows),
            defective=sum(row.defective for row in rows),
            quarantined=sum(row.quarantined for row in rows),
        )
        for supplier, rows in sorted(grouped.items(), key=lambda kv: (kv[0] is None, kv[0] or ""))
    ]


def batch_quality(
    session: Session, claimed: Select[int], defective: Select[int]
) -> list[BatchQuality]:
    """Per batch and supplier: what went out, and of it the codes in ``claimed`` (ids of codes
    named in claims) and in ``defective`` (ids of codes a claim's approval remedied)."""
    states = Counter(
        {
            (batch_id, state): count
            for batch_id, state, count in session.execute(
                select(Code.batch_id, Code.state, func.count()).group_by(Code.batch_id, Code.state)
            )
        }
    )
    delivered = _per_batch(session, Code.order_item_id.is_not(None))
    claimed_per_batch = _per_batch(session, Code.id.in_(claimed.distinct()))
    defective_per_batch = _per_batch(session, Code.id.in_(defective))
    rows = session.execute(
        select(Batch, Product.sku).join(Product, Product.id == Batch.product_id).order_by(Batch.id)
    )
    return [
        BatchQuality(
            reference=batch.reference,
            sku=sku,
            supplier=batch.supplier,
            imported=batch.code_count,
            available=states[(batch.id, CodeState.AVAILABLE)],
            delivered=delivered.get(batch.id, 0),
            claimed=claimed_per_batch.get(batch.id, 0),
            defective=defective_per_batch.get(batch.id, 0),
            quarantined=states[(batch.id, CodeState.QUARANTINED)],
        )
        for batch, sku in rows
    ]


def _per_batch(session: Session, condition: Any) -> dict[int, int]:
    rows = session.execute(
        select(Code.batch_id, func.count()).where(condition).group_by(Code.batch_id)
    )
    return dict(rows.all())


def available_by_sku(session: Session) -> dict[str, int]:
    """Codes for sale now, per product's SKU (zero included): one count over the partial index
    of available codes, for the metrics scrape."""
    available = (
        select(Code.product_id, func.count())
        .where(Code.state == CodeState.AVAILABLE)
        .group_by(Code.product_id)
    )
    counts = {product_id: int(count) for product_id, count in session.execute(available)}
    products = session.execute(select(Product.id, Product.sku)).tuples()
    return {sku: int(counts.get(product_id, 0)) for product_id, sku in products}
