"""What waiting backorders may keep from everyone else: only stock that arrives after them.

Two numbers per product, changed only here:

- ``backordered``: the codes the product's waiting backorders ask for, all together;
- ``set_aside``: codes in stock kept for them, never more than ``backordered``.

The rule (issue 15, item 7: a backorder for one code more than the stock must not lock a
product away from every other partner):

1. A backorder that starts waiting sets nothing aside: the stock it could not fill itself
   stays on sale to anyone, whoever ordered first.
2. Codes that arrive while backorders wait (an import, a batch released from quarantine) are
   set aside for them, up to what they ask for; what is left over is on sale.
3. New orders may take what is in stock less what is set aside; a backorder filled in turn,
   oldest first, may take anything (the codes set aside for it first).
4. When a backorder stops waiting, filled or failed, what it asked for is no longer asked: a
   failed one's codes stay set aside for the backorders still waiting, or go back on sale.

Codes that leave stock other than to an order (a quarantined batch, a claim's replacement)
come out of what is on sale first: ``reserved`` never sets aside more than is in stock.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, case, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from codeshelf.catalog.models import Product


def reserved(available: int, set_aside: int) -> int:
    """Of ``available`` codes in stock, those new orders may not take."""
    return max(0, min(set_aside, available))


Column = ColumnElement[Any] | InstrumentedAttribute[int]


def _at_most(value: Column, ceiling: Column) -> ColumnElement[Any]:
    return case((value > ceiling, ceiling), else_=value)


def _at_least_zero(value: Column) -> ColumnElement[Any]:
    return case((value < 0, 0), else_=value)


def arrived(session: Session, product_id: int, count: int) -> None:
    """``count`` codes of the product came into stock: waiting backorders have them first."""
    if count <= 0:
        return
    session.execute(
        update(Product)
        .where(Product.id == product_id, Product.backordered > Product.set_aside)
        .values(set_aside=_at_most(Product.set_aside + count, Product.backordered))
    )


def start_waiting(session: Session, product_id: int, quantity: int) -> bool:
    """A backorder waits for ``quantity`` codes of a product still on sale (False: retired).

    Nothing is set aside for it now (rule 1)."""
    promised = session.execute(
        update(Product)
        .where(Product.id == product_id, Product.retired_at.is_(None))
        .values(backordered=Product.backordered + quantity)
    )
    return bool(promised.rowcount)  # type: ignore[attr-defined]


def stop_waiting(session: Session, product_id: int, quantity: int, *, filled: bool) -> None:
    """A backorder of ``quantity`` codes stops waiting: ``filled`` from stock (what was set
    aside goes to it first) or failed (what was set aside stays for the others that wait)."""
    remaining = Product.backordered - quantity
    kept = _at_least_zero(Product.set_aside - quantity) if filled else Product.set_aside
    session.execute(
        update(Product)
        .where(Product.id == product_id)
        .values(backordered=remaining, set_aside=_at_most(kept, remaining))
    )
