"""The operator's stock API under /api/v1/admin/stock, for operator keys only: quality per batch
and supplier, products running low, quarantine and release, imports by upload.

It lives with the API rather than in ``stock/``: a release serves what waits for stock
(``worker.after_stock_arrives``), which composes claims and orders, above the stock domain.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from codeshelf.api.deps import OperatorDep, Services, ServicesDep
from codeshelf.claims import service as claims
from codeshelf.kit import uploads
from codeshelf.kit.clock import utcnow
from codeshelf.kit.schemas import PRINTABLE, MoneyOut
from codeshelf.operators.service import actor_name
from codeshelf.stock import service as stock
from codeshelf.stock.service import jobs
from codeshelf.worker import after_stock_arrives

router = APIRouter(prefix="/admin/stock", tags=["admin: stock"])


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


@router.get("/batches", response_model=BatchQualityPage, summary="Quality per batch")
def batches(operator: OperatorDep, services: ServicesDep) -> BatchQualityPage:
    """Quality per batch: delivered, claimed, confirmed defective, and the rates."""
    with services.db.read_session() as session:
        rows = claims.batch_quality(session)
    return BatchQualityPage(data=[BatchQualityOut.of(row) for row in rows])


@router.get("/suppliers", response_model=SupplierQualityPage, summary="Quality per supplier")
def suppliers(operator: OperatorDep, services: ServicesDep) -> SupplierQualityPage:
    """Quality per supplier: its batches added up."""
    with services.db.read_session() as session:
        rows = stock.supplier_quality(claims.batch_quality(session))
    return SupplierQualityPage(data=[SupplierQualityOut.of(row) for row in rows])


@router.get(
    "/cover",
    response_model=StockCoverPage,
    summary="Products running low",
)
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
    "/batches/{reference:path}/quarantine",
    response_model=QuarantinedOut,
    summary="Quarantine a batch",
)
def quarantine(reference: str, operator: OperatorDep, services: ServicesDep) -> QuarantinedOut:
    """Pull the batch's available codes out of sale (kept, counted as quarantined)."""
    with services.db.session() as session:
        count = stock.quarantine_batch(session, reference, actor_name(operator))
    return QuarantinedOut(batch=reference, quarantined=count)


@router.post(
    "/batches/{reference:path}/release",
    response_model=ReleasedOut,
    summary="Release a batch's quarantine",
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


# Imports by upload: the body is the file itself, streamed to disk (the middleware passes this
# one route's body on unread, up to CODESHELF_MAX_IMPORT_BYTES); the worker imports it.

IMPORTS_PATH = "/imports"


class IssueOut(BaseModel):
    line: int
    code: str = Field(description="Masked: ****-****-AB12.")
    reason: str


class IssueListOut(BaseModel):
    count: int = Field(description="Every such line; `lines` lists the first 1,000.")
    lines: list[IssueOut]


class ImportReportOut(BaseModel):
    """The report `codeshelf stock import` prints."""

    batch: str
    sku: str
    lines_read: int
    imported: int
    duplicates_in_file: IssueListOut
    duplicates_in_stock: IssueListOut
    malformed: IssueListOut


class ImportJobOut(BaseModel):
    id: str
    status: Literal["queued", "running", "done", "failed"]
    product_id: str
    reference: str = Field(description="The batch's reference once imported.")
    supplier: str | None
    unit_cost: MoneyOut | None
    format: Literal["csv", "lines"]
    size_bytes: int
    bytes_done: int
    lines_done: int
    progress_percent: float = Field(description="How much of the file was read, 0 to 100.")
    report: ImportReportOut | None = Field(description="Once done.")
    error: str | None = Field(description="Once failed: why (nothing was imported).")
    attempts: int = Field(description="Starts by a worker (more than 1 after a crash).")
    created_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def of(cls, view: jobs.JobView) -> ImportJobOut:
        return cls(
            id=view.id,
            status=view.status,
            product_id=view.sku,
            reference=view.reference,
            supplier=view.supplier,
            unit_cost=None if view.unit_cost is None else MoneyOut.of(view.unit_cost),
            format="csv" if view.csv_format else "lines",
            size_bytes=view.size_bytes,
            bytes_done=view.bytes_done,
            lines_done=view.lines_done,
            progress_percent=view.percent,
            report=None if view.report is None else ImportReportOut.model_validate(view.report),
            error=view.error,
            attempts=view.attempts,
            created_by=view.created_by,
            created_at=view.created_at,
            started_at=view.started_at,
            finished_at=view.finished_at,
        )


class ImportJobPage(BaseModel):
    data: list[ImportJobOut]


UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "description": "The file itself: a CSV (the column headed `code`, else the first) or one "
        "code per line.",
        "content": {
            media: {"schema": {"type": "string", "format": "binary"}}
            for media in ("text/csv", "text/plain", "application/octet-stream")
        },
    }
}


def _check(services: Services, product: str, reference: str, unit_cost: str | None) -> None:
    with services.db.read_session() as session:
        jobs.check_import(session, sku=product, reference=reference, unit_cost=unit_cost)


def _queue(services: Services, path: Any, actor: str, **fields: Any) -> ImportJobOut:
    with services.db.session() as session:
        job = jobs.create_job(session, path, actor=actor, **fields)
        return ImportJobOut.of(jobs.job_view(session, job))


@router.post(
    IMPORTS_PATH,
    status_code=202,
    response_model=ImportJobOut,
    openapi_extra=UPLOAD_BODY,
    summary="Upload a file of codes to import",
)
async def upload(
    request: Request,
    operator: OperatorDep,
    services: ServicesDep,
    product: Annotated[str, Query(max_length=64, description="The SKU.")],
    reference: Annotated[
        str, Query(max_length=128, pattern=PRINTABLE, description="The supplier's batch.")
    ],
    supplier: Annotated[str | None, Query(max_length=200, pattern=PRINTABLE)] = None,
    unit_cost: Annotated[
        str | None, Query(max_length=32, description="What one code cost, e.g. 45.00.")
    ] = None,
    file_format: Annotated[
        Literal["csv", "lines"] | None,
        Query(
            alias="format",
            description="Default: csv for a `text/csv` body, else one code per line.",
        ),
    ] = None,
) -> JSONResponse:
    """Queue an import of the file in the body; the worker imports it as `codeshelf stock
    import` would (same checks, same report, one transaction), then serves waiting claims and
    backorders. Poll `GET …/imports/{job_id}` for its progress and report."""
    actor = actor_name(operator)
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    csv_format = file_format == "csv" if file_format is not None else media == "text/csv"
    await run_in_threadpool(_check, services, product, reference, unit_cost)  # before the body
    settings = services.settings
    path, _ = await uploads.save_stream(
        request.stream(), settings.import_dir, ".csv" if csv_format else ".txt",
        settings.max_import_bytes,
    )  # fmt: skip
    try:
        job = await run_in_threadpool(
            _queue, services, path, actor, sku=product, reference=reference,
            supplier=supplier, unit_cost=unit_cost, csv_format=csv_format,
        )  # fmt: skip
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    location = f"{request.url.path}/{job.id}"
    return JSONResponse(job.model_dump(mode="json"), 202, headers={"Location": location})


@router.get(IMPORTS_PATH, response_model=ImportJobPage, summary="Import jobs")
def list_imports(
    operator: OperatorDep,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> ImportJobPage:
    """The latest import jobs, newest first."""
    with services.db.read_session() as session:
        found = jobs.list_jobs(session, limit)
        return ImportJobPage(data=[ImportJobOut.of(jobs.job_view(session, job)) for job in found])


@router.get(
    IMPORTS_PATH + "/{job_id}",
    response_model=ImportJobOut,
    summary="An import job: progress and report",
)
def show_import(job_id: str, operator: OperatorDep, services: ServicesDep) -> ImportJobOut:
    """The job's status, progress (percent of the file read) and, once done, its report."""
    with services.db.read_session() as session:
        return ImportJobOut.of(jobs.job_view(session, jobs.get_job(session, job_id)))
