"""Access requests (seed 003: API access is reviewed manually): the queue, one application in
full, and the decisions of the applications service. Approving opens the partner and shows
its owner's invitation link once, for the reviewer to send."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from codeshelf.applications import fields, service
from codeshelf.applications.models import ApplicationStatus
from codeshelf.applications.schemas import ApplicationOut
from codeshelf.kit.clock import utcnow
from codeshelf.kit.errors import DomainError, http_status
from codeshelf.members.roles import StaffPermission
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

router = APIRouter(prefix="/ops/applications")
WORDS = {
    "buyer_type": fields.BUYER_TYPE_WORDS,
    "payment": fields.PAYMENT_WORDS,
    "integration": fields.INTEGRATION_WORDS,
}


@router.get("", response_class=HTMLResponse)
def queue(request: Request, who: StaffDep, status: str = "") -> Response:
    require_staff(who, StaffPermission.PARTNERS)
    chosen = status if status in tuple(ApplicationStatus) else None
    with services(request).db.read_session() as session:
        shown = [ApplicationOut.of(session, a) for a in service.queue(session, chosen)]
    return page(
        request, "ops/applications.html", who, applications=shown,
        statuses=list(ApplicationStatus), chosen_status=chosen or "", words=service.STATUS_WORDS,
    )  # fmt: skip


def _one(
    request: Request, who: Staff, application_id: str, *, error: str | None = None,
    link: str | None = None, status: int = 200,
) -> Response:  # fmt: skip
    with services(request).db.read_session() as session:
        shown = ApplicationOut.of(session, service.get(session, application_id))
    return page(
        request, "ops/application.html", who, status=status, application=shown, error=error,
        link=link, words=WORDS, status_words=service.STATUS_WORDS,
    )  # fmt: skip


@router.get("/{application_id}", response_class=HTMLResponse)
def application_page(request: Request, who: StaffDep, application_id: str) -> Response:
    require_staff(who, StaffPermission.PARTNERS)
    return _one(request, who, application_id)


@router.post("/{application_id}", response_class=HTMLResponse)
async def decide(request: Request, who: StaffDep, application_id: str) -> Response:
    """Review (take it up), Approve (opens the partner, invites its owner) or Decline."""
    form = await checked_form(request, who)
    action = field(form, "action", 16)
    require_staff(
        who, StaffPermission.PARTNERS if action == "review" else StaffPermission.MANAGE_PARTNERS
    )
    svc, now, message = services(request), utcnow(), field(form, "message", 2000) or None
    link = None
    try:
        with svc.db.session() as session:
            if action == "approve":
                approved = service.approve(session, application_id, who.actor, now, message)
                link = svc.settings.public_url.rstrip("/") + approved.opened.invitation.path
            elif action == "decline":
                service.decline(session, application_id, who.actor, now, message or "")
            else:
                service.review(session, application_id, who.actor, now)
    except DomainError as exc:
        return _one(request, who, application_id, error=exc.detail, status=http_status(exc))
    if link is not None:
        return _one(request, who, application_id, link=link)
    return redirect(f"/ops/applications/{application_id}")
