"""Stock cover: for how many days each product's free stock lasts at the pace it sold lately.

Sales are the codes delivered in the window (orders and claims' replacements alike: both take
stock); free stock is what a new order could take now (available, less what waiting backorders
are promised). A product that sold nothing in the window has no end to its cover (None).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from codeshelf.catalog import service as catalog
from codeshelf.kit.errors import InvalidInputError
from codeshelf.stock.models import Code, CodeState
from codeshelf.stock.service import promises

SALES_WINDOW_DAYS = 14


@dataclass(frozen=True)
class StockCover:
    sku: str
    free: int  # codes a new order could take now
    sold: int  # codes delivered in the window
    window_days: int

    @property
    def per_day(self) -> float:
        return self.sold / self.window_days

    @property
    def cover_days(self) -> float | None:
        """Days the free stock lasts at ``per_day``; None (no end) for a product not selling."""
        return self.free / self.per_day if self.sold else None


def stock_cover(
    session: Session, now: datetime, window_days: int = SALES_WINDOW_DAYS
) -> list[StockCover]:
    """Every product on sale with its free stock and its sales over the last ``window_days``."""
    if window_days < 1:
        raise InvalidInputError("the sales window is at least one day", pointer="query:window")
    since = now - timedelta(days=window_days)
    sold = dict(
        session.execute(
            select(Code.product_id, func.count())
            .where(Code.delivered_at >= since, Code.delivered_at <= now)
            .group_by(Code.product_id)
        ).all()
    )
    available = dict(
        session.execute(
            select(Code.product_id, func.count())
            .where(Code.state == CodeState.AVAILABLE)
            .group_by(Code.product_id)
        ).all()
    )
    return [
        StockCover(
            sku=product.sku,
            free=available.get(product.id, 0)
            - promises.reserved(available.get(product.id, 0), product.set_aside),
            sold=sold.get(product.id, 0),
            window_days=window_days,
        )
        for product in catalog.list_products(session, include_retired=False)
    ]


def low_cover(
    session: Session, now: datetime, days: float, window_days: int = SALES_WINDOW_DAYS
) -> list[StockCover]:
    """Products whose free stock covers fewer than ``days`` days of their recent sales, the
    shortest cover first (a product with no sales never is)."""
    if days <= 0:
        raise InvalidInputError("days must be positive", pointer="query:days")
    short = [
        row
        for row in stock_cover(session, now, window_days)
        if row.cover_days is not None and row.cover_days < days
    ]
    return sorted(short, key=lambda row: (row.cover_days or 0.0, row.sku))
