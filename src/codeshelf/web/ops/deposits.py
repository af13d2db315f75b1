"""Deposits waiting for a second person (four eyes: above CODESHELF_DEPOSIT_APPROVAL_OVER),
and the latest decided; approve or decline, by the wallet service, which refuses the one who
asked."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from codeshelf.kit.clock import utcnow
from codeshelf.kit.errors import DomainError, http_status
from codeshelf.members.roles import StaffPermission
from codeshelf.members.service import staff
from codeshelf.wallet import service as wallet
from codeshelf.wallet.models import DepositStatus
from codeshelf.web.http import (
    Staff,
    StaffDep,
    checked_form,
    field,
    page,
    redirect,
    require_staff,
    services,
)

router = APIRouter(prefix="/ops/deposits")


def _deposits(
    request: Request, who: Staff, error: str | None = None, status: int = 200
) -> Response:
    with services(request).db.read_session() as session:
        waiting = wallet.deposit_requests(session, status=DepositStatus.PENDING)
        decided = [r for r in wallet.deposit_requests(session, limit=50) if r.status != "pending"]
        names = staff.names(session)
    thresholds = services(request).settings.deposit_thresholds()
    return page(
        request, "ops/deposits.html", who, status=status, waiting=waiting, decided=decided,
        names=names, thresholds=sorted(thresholds.values(), key=str), error=error,
    )  # fmt: skip


@router.get("", response_class=HTMLResponse)
def deposits(request: Request, who: StaffDep) -> Response:
    require_staff(who, StaffPermission.FINANCE)
    return _deposits(request, who)


@router.post("/{request_id}", response_class=HTMLResponse)
async def decide(request: Request, who: StaffDep, request_id: str) -> Response:
    require_staff(who, StaffPermission.FINANCE)
    form = await checked_form(request, who)
    try:
        with services(request).db.session() as session:
            if field(form, "decision", 8) == "approve":
                wallet.approve_deposit(session, request_id, who.actor, utcnow())
            else:
                note = field(form, "note", 500)
                wallet.decline_deposit(session, request_id, who.actor, note, utcnow())
    except DomainError as exc:
        return _deposits(request, who, error=exc.detail, status=http_status(exc))
    return redirect("/ops/deposits")
