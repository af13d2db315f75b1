"""Imports by upload: the file is streamed to disk (never held in memory; the body is read
only once the staff member's session, role and origin check out), the worker imports it as
``codeshelf stock import`` would, and the job's page shows a progress bar that updates itself
(htmx polls a fragment) until the report is there."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import BinaryIO

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile

from codeshelf.catalog import service as catalog
from codeshelf.kit import uploads
from codeshelf.kit.errors import DomainError, InvalidInputError, http_status
from codeshelf.members.roles import StaffPermission
from codeshelf.members.service import staff
from codeshelf.stock.service import jobs
from codeshelf.web import security
from codeshelf.web.http import (
    ForbiddenError,
    Staff,
    StaffDep,
    checked_form,
    field,
    page,
    redirect,
    require_staff,
    services,
    whole_number,
)

PATH = "/ops/stock/imports"  # its POST body is streamed (api/app.py), up to max_import_bytes
router = APIRouter(prefix=PATH)
MAX_FIELDS = 12


def _imports(
    request: Request, who: Staff, *, error: str | None = None, status: int = 200
) -> Response:
    with services(request).db.read_session() as session:
        shown = [jobs.job_view(session, job) for job in jobs.list_jobs(session)]
        products = catalog.list_products(session, include_retired=False)
    return page(
        request, "ops/imports.html", who, status=status, jobs=shown, products=products,
        error=error,
    )  # fmt: skip


@router.get("", response_class=HTMLResponse)
def imports_page(request: Request, who: StaffDep) -> Response:
    require_staff(who, StaffPermission.STOCK)
    return _imports(request, who)


def _copy(source: BinaryIO, directory: Path, suffix: str) -> Path:
    """The spooled upload into a file of its own in the import directory (none left behind
    if the copy fails: a full disk, say)."""
    target = uploads.new_upload_path(directory, suffix)
    try:
        with target.open("xb") as out:
            shutil.copyfileobj(source, out, 1_048_576)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return target


def _queue(request: Request, who: Staff, path: Path, form: FormData) -> str:
    with services(request).db.session() as session:
        job = jobs.create_job(
            session, path, sku=field(form, "product", 64),
            reference=field(form, "reference", 128).strip(),
            supplier=field(form, "supplier", 200).strip() or None,
            unit_cost=field(form, "unit_cost", 32).strip() or None,
            csv_format=field(form, "format", 8) == "csv", actor=who.actor,
        )  # fmt: skip
        return job.public_id


@router.post("", response_class=HTMLResponse)
async def upload(request: Request, who: StaffDep) -> Response:
    require_staff(who, StaffPermission.STOCK)
    if not security.same_origin(request):
        raise ForbiddenError  # before a byte of the body is read
    if whole_number(request.headers.get("content-length", "")) is None:
        # A browser's form always says how long it is; the body middleware has checked that
        # length against CODESHELF_MAX_IMPORT_BYTES, and the server reads no more than it.
        message = "an upload needs a Content-Length header"
        return _imports(request, who, error=message, status=411)
    form = await request.form(max_files=1, max_fields=MAX_FIELDS)  # files spool to disk
    try:
        await checked_form(request, who)
        sent = form.get("file")
        if not isinstance(sent, UploadFile) or not sent.filename:
            raise InvalidInputError("choose the file of codes to import", pointer="#/file")
        suffix = ".csv" if field(form, "format", 8) == "csv" else ".txt"
        directory = services(request).settings.import_dir
        path = await asyncio.to_thread(_copy, sent.file, directory, suffix)
        try:
            job_id = await run_in_threadpool(_queue, request, who, path, form)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
    except DomainError as exc:
        return _imports(request, who, error=exc.detail, status=http_status(exc))
    finally:
        await form.close()
    return redirect(f"{PATH}/{job_id}")


def _job(request: Request, job_id: str) -> jobs.JobView:
    with services(request).db.read_session() as session:
        return jobs.job_view(session, jobs.get_job(session, job_id))


@router.get("/{job_id}", response_class=HTMLResponse)
def job_page(request: Request, who: StaffDep, job_id: str) -> Response:
    require_staff(who, StaffPermission.STOCK)
    with services(request).db.read_session() as session:
        names = staff.names(session)
    return page(request, "ops/import.html", who, job=_job(request, job_id), names=names)


@router.get("/{job_id}/progress", response_class=HTMLResponse)
def job_progress(request: Request, who: StaffDep, job_id: str) -> Response:
    """The progress fragment the job's page polls (it stops polling once the job has ended)."""
    require_staff(who, StaffPermission.STOCK)
    return page(request, "ops/_job.html", who, job=_job(request, job_id))
