"""Imports as background jobs: a file already on disk, queued, then imported by the worker with
the same code as ``codeshelf stock import`` (``import_file``), its progress written as it goes.

A job's life: ``queued`` (``create_job``) → ``running`` (``claim_next``: one worker only) →
``done`` (``finish_job``, in the import's own transaction, so a job is done exactly when its
codes are in) or ``failed`` (``fail_job``: nothing was imported). A running job whose worker
went silent for longer than the stall limit was orphaned by a crash: ``requeue_stalled`` puts it
back in the queue, up to MAX_ATTEMPTS starts, then fails it. Each start has its attempt number:
progress and the end of a run count only for the attempt that holds the job, so a worker that
lost its job (requeued while it stalled) can neither finish nor fail it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from codeshelf.audit import service as audit
from codeshelf.catalog.models import Product
from codeshelf.catalog.service import get_product
from codeshelf.kit.errors import ConflictError, InvalidInputError, NotFoundError
from codeshelf.kit.ids import is_public_id, public_id
from codeshelf.kit.money import Money
from codeshelf.stock.models import IMPORT_JOB_PREFIX, ImportJob, ImportJobStatus
from codeshelf.stock.service.imports import (
    BatchExistsError,
    ImportReport,
    batch_exists,
    parse_unit_cost,
)

MAX_ATTEMPTS = 3  # a file that stopped its worker this often fails instead of stopping another
MAX_REFERENCE = 128
MAX_SUPPLIER = 200
_OPEN = (ImportJobStatus.QUEUED, ImportJobStatus.RUNNING)


class ImportJobNotFoundError(NotFoundError):
    slug = "import-job-not-found"


class ImportJobLostError(ConflictError):
    """This attempt no longer holds the job (it was requeued after going silent)."""

    slug = "import-job-lost"


@dataclass(frozen=True)
class Checked:
    product: Product
    reference: str
    unit_cost: Money | None


def check_import(session: Session, *, sku: str, reference: str, unit_cost: str | None) -> Checked:
    """What a new import needs: a known product, a batch reference not yet imported nor
    waiting in a job, a valid unit cost. Doors call it before receiving a file, to refuse at
    once; ``create_job`` calls it again."""
    product = get_product(session, sku)
    reference = reference.strip()
    if not reference or len(reference) > MAX_REFERENCE or not reference.isprintable():
        raise InvalidInputError(
            f"a batch reference is 1 to {MAX_REFERENCE} printable characters",
            pointer="query:reference",
        )
    if batch_exists(session, reference):
        raise BatchExistsError(f"batch {reference} was already imported")
    waiting = session.scalar(
        select(ImportJob.public_id).where(
            ImportJob.reference == reference, ImportJob.status.in_(_OPEN)
        )
    )
    if waiting is not None:
        raise BatchExistsError(f"batch {reference} is already being imported (job {waiting})")
    return Checked(product, reference, parse_unit_cost(unit_cost, product.price_currency))


def create_job(
    session: Session,
    path: Path,
    *,
    sku: str,
    reference: str,
    supplier: str | None,
    unit_cost: str | None,
    csv_format: bool,
    actor: str,
) -> ImportJob:
    """Queue the import of a file already on disk (where the worker can read it; it is removed
    once the job ends). Refuses what ``check_import`` refuses, and an empty or missing file."""
    checked = check_import(session, sku=sku, reference=reference, unit_cost=unit_cost)
    if supplier is not None and (len(supplier) > MAX_SUPPLIER or not supplier.isprintable()):
        raise InvalidInputError(
            f"a supplier is at most {MAX_SUPPLIER} printable characters", pointer="query:supplier"
        )
    if not path.is_file():
        raise InvalidInputError(f"no file to import at {path}")
    size = path.stat().st_size
    if size == 0:
        raise InvalidInputError("the file is empty: there is nothing to import")
    cost = checked.unit_cost
    job = ImportJob(
        public_id=public_id(IMPORT_JOB_PREFIX),
        status=ImportJobStatus.QUEUED,
        product_id=checked.product.id,
        reference=checked.reference,
        supplier=supplier or None,
        unit_cost_minor=None if cost is None else cost.minor,
        unit_cost_currency=None if cost is None else cost.currency,
        csv_format=csv_format,
        path=str(path.resolve()),
        size_bytes=size,
        bytes_done=0,
        lines_done=0,
        attempts=0,
        created_by=actor,
    )
    session.add(job)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="stock.import_queued",
        subject=checked.reference,
        details={"job": job.public_id, "sku": sku, "bytes": size},
    )
    return job


def get_job(session: Session, job_public_id: str) -> ImportJob:
    job = None
    if is_public_id(IMPORT_JOB_PREFIX, job_public_id):
        job = session.scalar(select(ImportJob).where(ImportJob.public_id == job_public_id))
    if job is None:
        raise ImportJobNotFoundError(f"no import job {job_public_id}")
    return job


def list_jobs(session: Session, limit: int = 50) -> list[ImportJob]:
    """The latest jobs, newest first."""
    return list(session.scalars(select(ImportJob).order_by(ImportJob.id.desc()).limit(limit)))


def any_to_claim(session: Session, now: datetime, stall: timedelta) -> bool:
    """Whether a job waits to be claimed or recovered (a read: the worker asks before it
    writes, so an idle worker takes no write lock for it)."""
    due = ImportJob.status == ImportJobStatus.QUEUED
    stalled = (ImportJob.status == ImportJobStatus.RUNNING) & (ImportJob.heartbeat_at < now - stall)
    return session.scalar(select(ImportJob.id).where(due | stalled).limit(1)) is not None


@dataclass(frozen=True)
class Claimed:
    """One attempt at a job, as the worker runs it (plain values: no session needed)."""

    id: int
    public_id: str
    attempt: int
    path: Path
    sku: str
    reference: str
    supplier: str | None
    unit_cost: str | None
    csv_format: bool
    size_bytes: int
    created_by: str


def claim_next(session: Session, now: datetime) -> Claimed | None:
    """Take the oldest queued job for this worker, or None. Two workers never take one job:
    PostgreSQL skips a job another worker is taking (FOR UPDATE SKIP LOCKED); on both the
    UPDATE only takes a job still queued, so the loser of a race gets None."""
    candidate = (
        select(ImportJob.id)
        .where(ImportJob.status == ImportJobStatus.QUEUED)
        .order_by(ImportJob.id)
        .limit(1)
    )
    if session.get_bind().dialect.name == "postgresql":
        candidate = candidate.with_for_update(skip_locked=True)
    job_id = session.scalar(candidate)
    if job_id is None:
        return None
    taken = session.execute(
        update(ImportJob)
        .where(ImportJob.id == job_id, ImportJob.status == ImportJobStatus.QUEUED)
        .values(
            status=ImportJobStatus.RUNNING,
            started_at=now,
            heartbeat_at=now,
            attempts=ImportJob.attempts + 1,
            bytes_done=0,
            lines_done=0,
        )
        .returning(ImportJob.attempts)
    ).scalar()
    if taken is None:
        return None
    job = session.get_one(ImportJob, job_id)
    session.refresh(job)
    sku = session.scalar(select(Product.sku).where(Product.id == job.product_id)) or ""
    cost = (
        None
        if job.unit_cost_minor is None or job.unit_cost_currency is None
        else Money(job.unit_cost_minor, job.unit_cost_currency).amount
    )
    return Claimed(
        id=job.id,
        public_id=job.public_id,
        attempt=int(taken),
        path=Path(job.path),
        sku=sku,
        reference=job.reference,
        supplier=job.supplier,
        unit_cost=cost,
        csv_format=job.csv_format,
        size_bytes=job.size_bytes,
        created_by=job.created_by,
    )


def _held(job: Claimed) -> Any:
    """The condition that ``job``'s attempt still holds it."""
    return (
        (ImportJob.id == job.id)
        & (ImportJob.status == ImportJobStatus.RUNNING)
        & (ImportJob.attempts == job.attempt)
    )


def note_progress(
    session: Session, job: Claimed, bytes_done: int, lines_done: int, now: datetime
) -> bool:
    """Write how far the attempt has read (its sign of life); False when it no longer holds
    the job (the caller stops its import)."""
    written = session.execute(
        update(ImportJob)
        .where(_held(job))
        .values(bytes_done=bytes_done, lines_done=lines_done, heartbeat_at=now)
    )
    return bool(written.rowcount)  # type: ignore[attr-defined]


def finish_job(
    session: Session, job: Claimed, report: ImportReport, lines_done: int, now: datetime
) -> None:
    """Mark the job done with its report, in the import's transaction (done exactly when the
    codes are in). Raises ImportJobLostError, so the caller rolls the import back, when the
    attempt no longer holds the job."""
    finished = session.execute(
        update(ImportJob)
        .where(_held(job))
        .values(
            status=ImportJobStatus.DONE,
            report=report.as_json(),
            bytes_done=job.size_bytes,
            lines_done=lines_done,
            heartbeat_at=now,
            finished_at=now,
        )
    )
    if not finished.rowcount:  # type: ignore[attr-defined]
        raise ImportJobLostError(f"job {job.public_id} was taken from this worker")


def fail_job(session: Session, job: Claimed, error: str, now: datetime) -> bool:
    """Mark the job failed (nothing of it was imported) with a readable ``error``; False when
    the attempt no longer held it."""
    failed = session.execute(
        update(ImportJob)
        .where(_held(job))
        .values(status=ImportJobStatus.FAILED, error=error[:2000], finished_at=now)
    )
    if not failed.rowcount:  # type: ignore[attr-defined]
        return False
    audit.record(
        session,
        actor=audit.WORKER,
        action="stock.import_failed",
        subject=job.reference,
        details={"job": job.public_id, "error": error[:500]},
    )
    return True


def put_back(session: Session, job: Claimed) -> bool:
    """Queue the job again, this start not counted (its worker is stopping and rolled back)."""
    returned = session.execute(
        update(ImportJob).where(_held(job)).values(**_QUEUED_AGAIN, attempts=ImportJob.attempts - 1)
    )
    return bool(returned.rowcount)  # type: ignore[attr-defined]


_QUEUED_AGAIN: dict[str, Any] = {
    "status": ImportJobStatus.QUEUED,
    "started_at": None,
    "heartbeat_at": None,
    "bytes_done": 0,
    "lines_done": 0,
}


def requeue_stalled(session: Session, now: datetime, stall: timedelta) -> list[str]:
    """Running jobs silent for longer than ``stall`` lost their worker (a crash: its import
    rolled back): each is queued again, or failed once it has been started MAX_ATTEMPTS times.
    Returns their public ids."""
    stalled = list(
        session.scalars(
            select(ImportJob).where(
                ImportJob.status == ImportJobStatus.RUNNING, ImportJob.heartbeat_at < now - stall
            )
        )
    )
    moved = []
    for job in stalled:
        gave_up = job.attempts >= MAX_ATTEMPTS
        values: dict[str, Any] = (
            {
                "status": ImportJobStatus.FAILED,
                "finished_at": now,
                "error": f"the worker stopped {job.attempts} times while importing this file; "
                "nothing was imported",
            }
            if gave_up
            else _QUEUED_AGAIN
        )
        changed = session.execute(
            update(ImportJob)
            .where(
                ImportJob.id == job.id,
                ImportJob.status == ImportJobStatus.RUNNING,
                ImportJob.attempts == job.attempts,
                ImportJob.heartbeat_at < now - stall,  # still silent: checked as it is written
            )
            .values(**values)
        )
        if not changed.rowcount:  # type: ignore[attr-defined]
            continue  # it moved meanwhile (progress, or its end)
        audit.record(
            session,
            actor=audit.WORKER,
            action="stock.import_failed" if gave_up else "stock.import_requeued",
            subject=job.reference,
            details={
                "job": job.public_id,
                "attempts": job.attempts,
                "silent_since": str(job.heartbeat_at),
            },
        )
        moved.append(job.public_id)
    return moved


# Progress on SQLite: the import holds the database's one write lock from start to end, so its
# progress cannot be committed meanwhile; it is written to a file beside the upload instead.


def progress_path(path: Path) -> Path:
    return path.with_name(path.name + ".progress")


def write_progress_file(path: Path, bytes_done: int, lines_done: int) -> None:
    """Replace the progress file at once (a reader never sees half of it)."""
    target = progress_path(path)
    partial = _partial(target)
    partial.write_text(json.dumps({"bytes_done": bytes_done, "lines_done": lines_done}))
    os.replace(partial, target)


def _progress_file(path: Path) -> tuple[int, int] | None:
    try:
        data = json.loads(progress_path(path).read_text())
        return int(data["bytes_done"]), int(data["lines_done"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _partial(target: Path) -> Path:
    return target.with_name(target.name + ".tmp")


def remove_files(path: Path) -> None:
    """The upload and its progress file, once the job has ended."""
    for leftover in (path, progress_path(path), _partial(progress_path(path))):
        leftover.unlink(missing_ok=True)


@dataclass(frozen=True)
class JobView:
    """A job as pages and the API show it."""

    id: str
    status: str
    sku: str
    reference: str
    supplier: str | None
    unit_cost: Money | None
    csv_format: bool
    size_bytes: int
    bytes_done: int
    lines_done: int
    report: dict[str, Any] | None
    error: str | None
    created_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    attempts: int

    @property
    def percent(self) -> float:
        """How much of the file was read, 0 to 100 (100 once done)."""
        if self.status == ImportJobStatus.DONE:
            return 100.0
        if not self.size_bytes:
            return 0.0
        return round(min(100.0, 100 * self.bytes_done / self.size_bytes), 1)


def job_view(session: Session, job: ImportJob) -> JobView:
    """The job with its latest progress (on SQLite, from the progress file while it runs)."""
    sku = session.scalar(select(Product.sku).where(Product.id == job.product_id)) or ""
    done, lines = job.bytes_done, job.lines_done
    if job.status == ImportJobStatus.RUNNING:
        found = _progress_file(Path(job.path))
        if found is not None and found[0] > done:
            done, lines = found
    cost = (
        None
        if job.unit_cost_minor is None or job.unit_cost_currency is None
        else Money(job.unit_cost_minor, job.unit_cost_currency)
    )
    return JobView(
        id=job.public_id,
        status=job.status,
        sku=sku,
        reference=job.reference,
        supplier=job.supplier,
        unit_cost=cost,
        csv_format=job.csv_format,
        size_bytes=job.size_bytes,
        bytes_done=done,
        lines_done=lines,
        report=job.report,
        error=job.error,
        created_by=job.created_by,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        attempts=job.attempts,
    )
