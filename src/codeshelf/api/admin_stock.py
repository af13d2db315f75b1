"""The operator's stock API under /api/v1/admin/stock, for operator keys only: quality per batch
and supplier, products running low, quarantine and release, imports by upload.

It lives with the API rather than in ``stock/``: a release serves what waits for stock
(``worker.after_stock_arrives``), which composes claims and orders, above the stock domain.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from codeshelf.api.deps import OperatorDep, ServicesDep
from codeshelf.api.problems import PROBLEM_JSON
from codeshelf.claims import service as claims
from codeshelf.kit.clock import utcnow
from codeshelf.operators.service import actor_name
from codeshelf.stock import service as stock
from codeshelf.worker import after_stock_arrives

router = APIRouter(prefix="/admin/stock", tags=["admin: stock"])


def problems(**descriptions: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI problem responses: ``problems(s404="…")``."""
    return {
        int(status[1:]): {"description": text, "content": {PROBLEM_JSON: {}}}
        for status, text in descriptions.items()
    }


BATCH_PROBLEMS = problems(s404="No such batch (`batch-not-found`)")


class BatchQualityOut(BaseModel):
    reference: str
    sku: str
    supplier: str | None
    imported: int
    available: int
    delivered: int = Field(description="Ever delivered to a partner (claimed codes included).")
    claimed: int = Field(description="Distinct delivered codes named in any claim.")
    defective: int = Field(description="Codes an approved claim confirmed defective.")
    quarantined: int
    claim_rate: float = Field(description="claimed / delivered (0 before any delivery).")
    defect_rate: float = Field(description="defective / delivered.")

    @classmethod
    def of(cls, row: stock.BatchQuality) -> BatchQualityOut:
        return cls(**vars(row), claim_rate=row.claim_rate, defect_rate=row.defect_rate)


class SupplierQualityOut(BaseModel):
    supplier: str | None = Field(description="null: batches imported without a supplier.")
    batches: int
    imported: int
    available: int
    delivered: int
    claimed: int
    defective: int
    quarantined: int
    claim_rate: float
    defect_rate: float

    @classmethod
    def of(cls, row: stock.SupplierQuality) -> SupplierQualityOut:
        return cls(**vars(row), claim_rate=row.claim_rate, defect_rate=row.defect_rate)


class BatchQualityPage(BaseModel):
    data: list[BatchQualityOut]


class SupplierQualityPage(BaseModel):
    data: list[SupplierQualityOut]


class StockCoverOut(BaseModel):
    sku: str
    free: int = Field(description="Codes a new order could take now.")
    sold: int = Field(description="Codes delivered in the window.")
    window_days: int
    per_day: float
    cover_days: float | None = Field(description="Days the free stock lasts; null: no sales.")


class StockCoverPage(BaseModel):
    data: list[StockCoverOut]


class QuarantinedOut(BaseModel):
    batch: str
    quarantined: int = Field(description="Available codes pulled out of sale.")


class ServedOut(BaseModel):
    claims: list[str] = Field(description="Claims sent their replacement codes.")
    expired: list[str] = Field(description="Backorders failed at their deadline.")
    filled: list[str] = Field(description="Backorders delivered.")


class ReleasedOut(BaseModel):
    batch: str
    sku: str
    released: int = Field(description="Quarantined codes never delivered: on sale again.")
    kept_quarantined: int = Field(description="Codes a claim disputes: still quarantined.")
    served: ServedOut


@router.get("/batches", response_model=BatchQualityPage)
def batches(operator: OperatorDep, services: ServicesDep) -> BatchQualityPage:
    """Quality per batch: delivered, claimed, confirmed defective, and the rates."""
    with services.db.read_session() as session:
        rows = claims.batch_quality(session)
    return BatchQualityPage(data=[BatchQualityOut.of(row) for row in rows])


@router.get("/suppliers", response_model=SupplierQualityPage)
def suppliers(operator: OperatorDep, services: ServicesDep) -> SupplierQualityPage:
    """Quality per supplier: its batches added up."""
    with services.db.read_session() as session:
        rows = stock.supplier_quality(claims.batch_quality(session))
    return SupplierQualityPage(data=[SupplierQualityOut.of(row) for row in rows])


@router.get("/cover", response_model=StockCoverPage, responses=problems(s422="Invalid days"))
def low_cover(
    operator: OperatorDep,
    services: ServicesDep,
    days: Annotated[float, Query(gt=0, le=3650, description="Fewer days than this.")] = 7,
    window: Annotated[
        int, Query(ge=1, le=365, description="Days of sales to measure the pace over.")
    ] = stock.SALES_WINDOW_DAYS,
) -> StockCoverPage:
    """Products whose free stock covers fewer than `days` days of their recent sales, the
    shortest first (a product with no sales in the window is never listed)."""
    with services.db.read_session() as session:
        rows = stock.low_cover(session, utcnow(), days, window)
    return StockCoverPage(
        data=[
            StockCoverOut(
                sku=row.sku,
                free=row.free,
                sold=row.sold,
                window_days=row.window_days,
                per_day=row.per_day,
                cover_days=row.cover_days,
            )
            for row in rows
        ]
    )


@router.post(
    "/batches/{reference:path}/quarantine", response_model=QuarantinedOut, responses=BATCH_PROBLEMS
)
def quarantine(reference: str, operator: OperatorDep, services: ServicesDep) -> QuarantinedOut:
    """Pull the batch's available codes out of sale (kept, counted as quarantined)."""
    with services.db.session() as session:
        count = stock.quarantine_batch(session, reference, actor_name(operator))
    return QuarantinedOut(batch=reference, quarantined=count)


@router.post(
    "/batches/{reference:path}/release", response_model=ReleasedOut, responses=BATCH_PROBLEMS
)
def release(reference: str, operator: OperatorDep, services: ServicesDep) -> ReleasedOut:
    """End the batch's quarantine: codes never delivered are on sale again; codes a claim
    disputes stay quarantined. Then, as after an import, approved claims waiting for
    replacements and backorders are served from it."""
    actor = actor_name(operator)
    with services.db.session() as session:
        released = stock.release_batch(session, reference, actor)
    with services.db.session() as session:
        served = after_stock_arrives(session, actor)
    return ReleasedOut(
        batch=released.batch,
        sku=released.sku,
        released=released.released,
        kept_quarantined=released.kept,
        served=ServedOut(claims=served.claims, expired=served.expired, filled=served.filled),
    )
