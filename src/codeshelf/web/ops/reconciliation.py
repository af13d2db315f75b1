"""A day's money across every partner and currency, with each line's own cross-checks and the
day's checks across everyone; mismatches highlighted; the same as CSV."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from codeshelf.kit.clock import utcnow
from codeshelf.members.roles import StaffPermission
from codeshelf.reconciliation import service as reconciliation
from codeshelf.web.http import StaffDep, csv_download, page, parse_day, require_staff, services

router = APIRouter(prefix="/ops/reconciliation")


def _report(request: Request, day: str) -> reconciliation.OperatorDay:
    chosen = parse_day(day) or (utcnow() - timedelta(days=1)).date()
    with services(request).db.read_session() as session:
        return reconciliation.operator_day(session, chosen)


@router.get("", response_class=HTMLResponse)
def day_page(request: Request, who: StaffDep, day: str = "") -> Response:
    require_staff(who, StaffPermission.FINANCE)
    return page(request, "ops/reconciliation.html", who, report=_report(request, day))


@router.get("/reconciliation.csv")
def day_csv(request: Request, who: StaffDep, day: str = "") -> Response:
    require_staff(who, StaffPermission.FINANCE)
    report = _report(request, day)
    return csv_download(f"reconciliation-{report.day}.csv", reconciliation.operator_csv(report))
