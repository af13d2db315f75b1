"""``codeshelf stock …``: importing codes (inline or as a background job), what is in stock,
quality per batch and supplier, products running low, quarantine and release."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

from codeshelf.audit import service as audit
from codeshelf.claims import service as claims
from codeshelf.cli import context, stock_jobs
from codeshelf.cli.options import JsonOption
from codeshelf.cli.output import domain_errors, emit, err, fail, out, say, table
from codeshelf.kit.clock import utcnow
from codeshelf.kit.db import Database
from codeshelf.kit.errors import DomainError
from codeshelf.stock import service as stock
from codeshelf.worker import after_stock_arrives

stock_app = typer.Typer(no_args_is_help=True, help="Code stock.")
stock_app.command("jobs")(stock_jobs.stock_jobs)


@stock_app.command("import")
def stock_import(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    sku: Annotated[str, typer.Option()] = ...,  # type: ignore[assignment]
    batch: Annotated[str, typer.Option(help="The supplier batch reference (unique).")] = ...,  # type: ignore[assignment]
    supplier: str | None = None,
    unit_cost: Annotated[str | None, typer.Option(help="What one code cost, e.g. 45.00.")] = None,
    strict: Annotated[bool, typer.Option(help="Refuse the whole file if any line is bad.")] = False,
    background: Annotated[
        bool,
        typer.Option(
            "--background",
            help="Queue it for the worker instead (a copy; `stock jobs` shows its progress).",
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Import codes from a CSV (column `code`, or the first) or a one-code-per-line file."""
    if background:
        if strict:
            fail("--strict is not available with --background")
        stock_jobs.queue_file(
            file,
            sku=sku,
            batch=batch,
            supplier=supplier,
            unit_cost=unit_cost,
            csv_format=stock.is_csv(file),
            as_json=as_json,
        )
        return
    db = context.database()
    vault = context.vault()
    with db.read_session() as session:
        actor = context.actor(session)
    progress = Progress(
        *Progress.get_default_columns()[:-1],
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=not err.is_terminal,
        transient=True,
    )
    task = progress.add_task("importing", total=file.stat().st_size)
    try:
        with progress, db.session() as session:
            report = stock.import_file(
                session,
                vault,
                file,
                sku=sku,
                batch_reference=batch,
                supplier=supplier,
                unit_cost=unit_cost,
                strict=strict,
                on_progress=lambda done, _lines: progress.update(task, completed=done),
                actor=actor,
            )
    except stock.StrictImportRefusedError as exc:
        _print_report(exc.report, as_json, file=sys.stderr)
        fail(exc.detail)
    except KeyboardInterrupt:
        fail("interrupted: nothing was imported", 130)
    except DomainError as exc:
        fail(exc.detail)
    _print_report(report, as_json)
    _serve_waiting(db, actor)


def _serve_waiting(db: Database, actor: str = audit.OPERATOR_CLI) -> None:
    """New stock may be what approved claims and backorders wait for: serve them now."""
    with db.session() as session:
        served = after_stock_arrives(session, actor)
    for line in served.lines():
        say(line, console=err)


def _print_report(report: stock.ImportReport, as_json: bool, file: Any = None) -> None:
    if as_json:
        typer.echo(json.dumps(report.as_json(), indent=2), file=file)
        return
    console = err if file is sys.stderr else out
    say(
        f"batch {report.batch} ({report.sku}): {report.imported} imported of "
        f"{report.lines_read} lines; {report.duplicates_in_file.count} duplicate(s) within the "
        f"file, {report.duplicates_in_stock.count} already in stock, "
        f"{report.malformed.count} malformed",
        console=console,
    )
    for label, issues in (
        ("duplicate in file", report.duplicates_in_file),
        ("already in stock", report.duplicates_in_stock),
        ("malformed", report.malformed),
    ):
        for issue in issues.examples:
            reason = f" ({issue.reason})" if issue.reason else ""
            say(f"  line {issue.line}: {label}: {issue.code}{reason}", console=console)
        if issues.count > len(issues.examples):
            say(f"  … and {issues.count - len(issues.examples)} more {label}", console=console)


@stock_app.command("summary")
def stock_summary(as_json: JsonOption = False) -> None:
    """Codes per product and state."""
    with context.database().read_session() as session:
        data = stock.summary(session)
    columns = ["sku", *tuple(stock.CodeState), "total"]
    rows = [[row[column] for column in columns] for row in data]
    emit(data, as_json, lambda: table("stock", columns, rows))


_QUALITY = ["imported", "available", "delivered", "claimed", "defective", "quarantined"]


def _rates(row: stock.BatchQuality | stock.SupplierQuality) -> dict[str, float]:
    return {"claim_rate": round(row.claim_rate, 4), "defect_rate": round(row.defect_rate, 4)}


def _percent(rate: float) -> str:
    return f"{rate * 100:.1f} %"


@stock_app.command("batches")
def stock_batches(as_json: JsonOption = False) -> None:
    """Quality per batch: delivered, claimed, confirmed defective (approved claims), and the
    claim and defect rates of what was delivered."""
    with context.database().read_session() as session:
        data = [{**vars(row), **_rates(row)} for row in claims.batch_quality(session)]
    columns = ["reference", "sku", "supplier", *_QUALITY, "claim_rate", "defect_rate"]
    rows = [
        [
            *(row[c] if row[c] is not None else "" for c in columns[:-2]),
            _percent(row["claim_rate"]),
            _percent(row["defect_rate"]),
        ]
        for row in data
    ]
    emit(data, as_json, lambda: table("batches", columns, rows))


@stock_app.command("suppliers")
def stock_suppliers(as_json: JsonOption = False) -> None:
    """Quality per supplier: its batches added up, with claim and defect rates."""
    with context.database().read_session() as session:
        suppliers = stock.supplier_quality(claims.batch_quality(session))
    data = [{**vars(row), **_rates(row)} for row in suppliers]
    columns = ["supplier", "batches", *_QUALITY, "claim_rate", "defect_rate"]
    rows = [
        [
            row["supplier"] or "(none)",
            *(row[c] for c in columns[1:-2]),
            _percent(row["claim_rate"]),
            _percent(row["defect_rate"]),
        ]
        for row in data
    ]
    emit(data, as_json, lambda: table("suppliers", columns, rows))


@stock_app.command("cover")
def stock_cover(
    days: Annotated[
        float, typer.Option(min=0.1, help="List products covering fewer days than this.")
    ] = 7,
    window: Annotated[
        int, typer.Option(min=1, help="Days of sales the pace is measured over.")
    ] = stock.SALES_WINDOW_DAYS,
    as_json: JsonOption = False,
) -> None:
    """Products running low: free stock covering fewer than --days days of recent sales."""
    with domain_errors(), context.database().read_session() as session:
        low = stock.low_cover(session, utcnow(), days, window)
    data = [
        {
            "sku": row.sku,
            "free": row.free,
            "sold": row.sold,
            "window_days": row.window_days,
            "per_day": round(row.per_day, 2),
            "cover_days": None if row.cover_days is None else round(row.cover_days, 1),
        }
        for row in low
    ]
    columns = ["sku", "free", "sold", "per_day", "cover_days"]
    rows = [[row[c] for c in columns] for row in data]
    emit(data, as_json, lambda: table(f"under {days:g} days of stock", columns, rows))


@stock_app.command("quarantine")
def stock_quarantine(
    batch: Annotated[str, typer.Option(help="The batch reference.")] = ...,  # type: ignore[assignment]
    as_json: JsonOption = False,
) -> None:
    """Pull a bad batch's remaining available codes out of sale (kept as quarantined)."""
    with domain_errors(), context.database().session() as session:
        count = stock.quarantine_batch(session, batch, context.actor(session))
    data = {"batch": batch, "quarantined": count}
    emit(data, as_json, lambda: say(f"quarantined {count} available code(s) of batch {batch}"))


@stock_app.command("release")
def stock_release(
    batch: Annotated[str, typer.Argument(help="The batch reference.")],
    as_json: JsonOption = False,
) -> None:
    """End a batch's quarantine: its codes never delivered are on sale again (codes a claim
    disputes stay quarantined); then waiting claims and backorders are served, as after an
    import."""
    db = context.database()
    with domain_errors(), db.session() as session:
        actor = context.actor(session)
        released = stock.release_batch(session, batch, actor)
    data = {"batch": batch, "released": released.released, "kept_quarantined": released.kept}
    message = f"released {released.released} code(s) of batch {batch}"
    if released.kept:
        message += f"; {released.kept} code(s) stay quarantined (disputed by claims)"
    emit(data, as_json, lambda: say(message))
    if released.released:
        _serve_waiting(db, actor)
