"""The whole audit log: search by actor, partner, action and date; the same rows as CSV."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from codeshelf.audit import service as audit
from codeshelf.audit.models import AuditEvent
from codeshelf.kit import csvs, paging
from codeshelf.members.roles import StaffPermission
from codeshelf.members.service import staff
from codeshelf.web.http import StaffDep, csv_download, page, parse_day, require_staff, services

router = APIRouter(prefix="/ops/audit")
PAGE_SIZE = 100
Before = Annotated[int | None, Query(ge=1, le=2**62)]  # the last event id of the page before
CSV_ROWS = 10_000


def _events(
    request: Request, actor: str, partner: str, action: str, day_from: str, day_to: str,
    before: int | None, limit: int,
) -> tuple[list[AuditEvent], dict[str, str]]:  # fmt: skip
    start, end = parse_day(day_from), parse_day(day_to)
    with services(request).db.read_session() as session:
        found = audit.search(
            session, actor=actor.strip() or None, partner_public_id=partner.strip() or None,
            action=action.strip() or None,
            since=datetime.combine(start, time(), UTC) if start else None,
            until=datetime.combine(end, time(), UTC) + timedelta(days=1) if end else None,
            before=before, limit=limit,
        )  # fmt: skip
        names = staff.names(session)
    return found, names


@router.get("", response_class=HTMLResponse)
def audit_log(
    request: Request, who: StaffDep, actor: str = "", partner: str = "", action: str = "",
    day_from: str = "", day_to: str = "", before: Before = None,
) -> Response:  # fmt: skip
    require_staff(who, StaffPermission.AUDIT)
    found, names = _events(
        request, actor, partner, action, day_from, day_to, before, paging.fetch_size(PAGE_SIZE)
    )
    found, following = paging.cut(found, PAGE_SIZE, lambda event: event.id)
    filters = {"actor": actor, "partner": partner, "action": action, "day_from": day_from,
               "day_to": day_to}  # fmt: skip
    return page(
        request, "ops/audit.html", who, events=found, names=names, filters=filters,
        next_before=following,
    )  # fmt: skip


@router.get("/audit.csv")
def audit_csv(
    request: Request, who: StaffDep, actor: str = "", partner: str = "", action: str = "",
    day_from: str = "", day_to: str = "",
) -> Response:  # fmt: skip
    require_staff(who, StaffPermission.AUDIT)
    found, names = _events(request, actor, partner, action, day_from, day_to, None, CSV_ROWS)
    header = [
        "occurred_at",
        "actor",
        "person",
        "action",
        "partner_id",
        "subject",
        "count",
        "details",
    ]
    rows = [
        [e.occurred_at.isoformat(), e.actor, names.get(e.actor, ""), e.action,
         e.partner_public_id or "", e.subject or "", e.count if e.count is not None else "",
         json.dumps(e.details, sort_keys=True) if e.details else ""]
        for e in found
    ]  # fmt: skip
    typed = {"actor", "person", "subject", "details"}  # what people and partners typed
    return csv_download("audit.csv", csvs.table(header, rows, typed))
