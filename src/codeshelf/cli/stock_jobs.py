"""``codeshelf stock import … --background`` and ``codeshelf stock jobs``: imports the worker
runs, as the console's uploads are."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated, Any

import typer

from codeshelf.cli import context
from codeshelf.cli.options import JsonOption
from codeshelf.cli.output import domain_errors, emit, fail, say, table
from codeshelf.kit.errors import DomainError
from codeshelf.kit.uploads import new_upload_path
from codeshelf.stock.service import jobs


def job_json(view: jobs.JobView) -> dict[str, Any]:
    return {
        "id": view.id,
        "status": view.status,
        "sku": view.sku,
        "reference": view.reference,
        "supplier": view.supplier,
        "unit_cost": None if view.unit_cost is None else view.unit_cost.as_json(),
        "format": "csv" if view.csv_format else "lines",
        "size_bytes": view.size_bytes,
        "bytes_done": view.bytes_done,
        "lines_done": view.lines_done,
        "percent": view.percent,
        "report": view.report,
        "error": view.error,
        "attempts": view.attempts,
        "created_by": view.created_by,
        "created_at": view.created_at,
        "started_at": view.started_at,
        "finished_at": view.finished_at,
    }


def queue_file(
    file: Path,
    *,
    sku: str,
    batch: str,
    supplier: str | None,
    unit_cost: str | None,
    csv_format: bool,
    as_json: bool,
) -> None:
    """Copy the file into the import directory (the worker removes its copy once done) and
    queue it; checked first, so a refused import copies nothing."""
    db = context.database()
    with domain_errors(), db.read_session() as session:
        jobs.check_import(session, sku=sku, reference=batch, unit_cost=unit_cost)
    copy = new_upload_path(context.settings().import_dir, ".csv" if csv_format else ".txt")
    try:
        shutil.copyfile(file, copy)
        with db.session() as session:
            job = jobs.create_job(
                session,
                copy,
                sku=sku,
                reference=batch,
                supplier=supplier,
                unit_cost=unit_cost,
                csv_format=csv_format,
                actor=context.actor(session),
            )
            data = job_json(jobs.job_view(session, job))
    except DomainError as exc:
        copy.unlink(missing_ok=True)
        fail(exc.detail)
    except BaseException:
        copy.unlink(missing_ok=True)
        raise
    emit(data, as_json, lambda: say(f"queued {data['id']}: `codeshelf stock jobs` shows it"))


def stock_jobs(
    limit: Annotated[int, typer.Option(min=1, max=500, help="How many, newest first.")] = 20,
    as_json: JsonOption = False,
) -> None:
    """Import jobs (uploads, `stock import --background`): status, progress, result."""
    with context.database().read_session() as session:
        data = [job_json(jobs.job_view(session, job)) for job in jobs.list_jobs(session, limit)]
    columns = ["id", "status", "sku", "reference", "progress", "lines", "imported", "error"]
    rows = [
        [
            row["id"],
            row["status"],
            row["sku"],
            row["reference"],
            f"{row['percent']:.1f} %",
            row["lines_done"],
            "" if row["report"] is None else row["report"]["imported"],
            row["error"] or "",
        ]
        for row in data
    ]
    emit(data, as_json, lambda: table("import jobs", columns, rows))
