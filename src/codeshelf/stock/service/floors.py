"""Stock floors: where the pick of a product's available codes starts (PostgreSQL).

A code sold leaves a dead entry in the partial index of available codes, at its front, until
vacuum removes it; vacuum skips index cleanup while few heap pages hold dead rows, which on a
table of millions of codes is nearly always. A pick scanning from the first id then reads past
every code ever sold: 8,000 buffers at 10,000 sold. The floor is an id below which no code of
the product is available; the pick's scan starts there and reads a few pages however many
codes were sold. It is only a hint: a pick that comes up short from the floor looks again from
the first id, so a floor set too high could reorder which codes go first, never refuse stock.

SQLite deletes index entries as it updates rows: its pick needs no floor and these are no-ops.
"""

from __future__ import annotations

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from codeshelf.catalog.models import Product
from codeshelf.stock.models import Code, StockFloor

_FLOORS = (
    select(Product.id, StockFloor.code_id)
    .select_from(Product)
    .outerjoin(StockFloor, StockFloor.product_id == Product.id)
)

# The lowest available code at or above a product's floor: the pick's own index scan, so it
# walks over only what was sold since the floor last moved (an aggregate over the products'
# available codes read every one of them: 0.4-0.7 s a second at a million in stock).
LOWEST_AVAILABLE = (
    "SELECT id FROM codes WHERE product_id = :product AND state = 'available' "
    "AND id >= :floor ORDER BY id LIMIT 1"
)
_LOWEST_AVAILABLE = text(LOWEST_AVAILABLE)


def _postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def advance(session: Session) -> int:
    """Raise each product's floor to its lowest available code; returns how many moved.

    Compare-and-set: a floor an import lowered meanwhile is left as it is.
    """
    if not _postgresql(session):
        return 0
    moved = 0
    for product_id, floor in session.execute(_FLOORS).all():
        lowest = session.scalar(_LOWEST_AVAILABLE, {"product": product_id, "floor": floor or 0})
        if lowest is None or lowest == floor:
            continue
        if floor is None:
            insert_ = insert(StockFloor).values(product_id=product_id, code_id=lowest)
            statement = insert_.on_conflict_do_nothing().returning(StockFloor.product_id)
        else:
            statement = (
                update(StockFloor)
                .where(StockFloor.product_id == product_id, StockFloor.code_id == floor)
                .values(code_id=lowest)
                .returning(StockFloor.product_id)
            )
        moved += len(session.execute(statement).all())
    return moved


def include_batch(session: Session, product_id: int, batch_id: int) -> None:
    """Lower the product's floor to a new batch's first code: a concurrent import may have
    taken ids below codes that were sold meanwhile and the floor moved past."""
    if not _postgresql(session):
        return
    first = select(func.min(Code.id)).where(Code.batch_id == batch_id).scalar_subquery()
    session.execute(
        update(StockFloor)
        .where(StockFloor.product_id == product_id, StockFloor.code_id > first)
        .values(code_id=first)
    )
