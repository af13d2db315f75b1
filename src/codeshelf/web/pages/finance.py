"""Finance: the price list (this partner's prices and what is available), and the wallet's
statement with its running balance, filtered by date; each as a page and as CSV."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from codeshelf.catalog.service import face_value
from codeshelf.kit import csvs
from codeshelf.members.roles import Permission
from codeshelf.orders import service as orders
from codeshelf.reconciliation import service as recon
from codeshelf.reconciliation.schemas import Reconciliation
from codeshelf.stock import service as stock
from codeshelf.wallet import service as wallet
from codeshelf.web.http import (
    Viewer,
    ViewerDep,
    csv_download,
    page,
    parse_day,
    require,
    services,
)

router = APIRouter(prefix="/account")
STATEMENT_ROWS = 10_000  # one page or one CSV: a year of a busy partner's wallet moves


def _csv(name: str, header: list[str], rows: list[list[str]]) -> Response:
    return csv_download(name, csvs.table(header, rows, typed={"reference"}))


@router.get("/prices", response_class=HTMLResponse)
def prices(request: Request, who: ViewerDep, format: str = "") -> Response:
    require(who, Permission.FINANCE)
    svc = services(request)
    with svc.db.read_session() as session:
        lines = stock.inventory(session, who.partner)
    if format == "csv":
        header = ["product_id", "region", "denomination", "currency", "price", "price_currency"]
        rows = [
            [
                line.product.sku,
                line.product.region,
                face_value(line.product).amount,
                face_value(line.product).currency,
                line.price.amount,
                line.price.currency,
            ]
            for line in lines
        ]
        return _csv("price-list.csv", header, rows)
    return page(request, "prices.html", who, lines=lines, face_value=face_value)


@router.get("/statement", response_class=HTMLResponse)
def statement(
    request: Request, who: ViewerDep, since: str = "", until: str = "", format: str = ""
) -> Response:
    """``since`` and ``until`` are days (UTC), both included."""
    require(who, Permission.FINANCE)
    first, last = parse_day(since), parse_day(until)
    entries, order_ids = _entries(request, who, first, last)
    if format == "csv":
        header = ["id", "created_at", "kind", "amount", "currency", "balance_after", "order_id",
                  "reference"]  # fmt: skip
        rows = [
            [
                entry.id, entry.created_at.isoformat(), entry.kind, entry.amount.amount,
                entry.amount.currency, entry.balance_after.amount,
                order_ids.get(entry.order_id or 0, ""), entry.reference or "",
            ]
            for entry in entries
        ]  # fmt: skip
        return _csv("statement.csv", header, rows)
    return page(
        request, "statement.html", who, entries=entries, order_ids=order_ids,
        since=first.isoformat() if first else "", until=last.isoformat() if last else "",
    )  # fmt: skip


def _entries(
    request: Request, who: Viewer, first: date | None, last: date | None
) -> tuple[list[wallet.LedgerEntry], dict[int, str]]:
    svc = services(request)
    start = datetime.combine(first, datetime.min.time(), UTC) if first else None
    end = datetime.combine(last, datetime.min.time(), UTC) + timedelta(days=1) if last else None
    with svc.db.read_session() as session:
        entries = wallet.ledger_entries(
            session, who.partner.id, after=None, limit=STATEMENT_ROWS, currency=None,
            since=start, until=end,
        )  # fmt: skip
        ids = orders.public_ids(session, {e.order_id for e in entries if e.order_id})
    return entries, ids


@router.get("/reconciliation", response_class=HTMLResponse)
def reconciliation(request: Request, who: ViewerDep, day: str = "", format: str = "") -> Response:
    """One UTC day's money per currency and its orders: the same report as the API's."""
    require(who, Permission.FINANCE)
    chosen = parse_day(day) or datetime.now(UTC).date()
    svc = services(request)
    with svc.db.read_session() as session:
        report = Reconciliation.of(recon.partner_day(session, who.partner.id, chosen))
    if format == "csv":
        name = f"codeshelf-reconciliation-{chosen.isoformat()}.csv"
        return csv_download(name, report.as_csv())
    return page(request, "reconciliation.html", who, report=report, day=chosen.isoformat())
