"""Claims in the console: the triage queue (the claims service's order: overdue first, API
partners' claims first), and the claim screen with the evidence beside each code's verdict
and history, and every decision the claims service offers."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from codeshelf.audit import service as audit
from codeshelf.claims import policy as rules
from codeshelf.claims import service
from codeshelf.claims.models import Channel, ClaimEvidence, ClaimStatus
from codeshelf.claims.schemas import operator_view, queued_view
from codeshelf.kit.errors import DomainError, InvalidInputError, http_status
from codeshelf.members.roles import StaffPermission
from codeshelf.members.service import staff
from codeshelf.web.http import (
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

router = APIRouter(prefix="/ops/claims")
STATUSES = tuple(ClaimStatus)


def _actor(who: Staff) -> service.Actor:
    return service.Actor(who.actor)


@router.get("", response_class=HTMLResponse)
def queue(
    request: Request, who: StaffDep, status: str = "", overdue: str = "", due_within: str = "",
    partner: str = "", channel: str = "",
) -> Response:  # fmt: skip
    """The triage queue, filtered by status, partner, channel, overdue or due within hours."""
    require_staff(who, StaffPermission.CLAIMS)
    chosen = status if status in STATUSES else None
    hours = whole_number(due_within, 6)
    hours = hours if hours is not None and 0 < hours <= 720 else None
    error = None
    with services(request).db.read_session() as session:
        try:
            found = service.queue(
                session, status=chosen, overdue=overdue == "1", partner=partner.strip() or None,
                channel=channel if channel in tuple(Channel) else None,
                due_within=timedelta(hours=hours) if hours else None,
            )  # fmt: skip
        except DomainError as exc:
            found, error = [], exc.detail
        shown = [queued_view(session, claim) for claim in found]
    filters = {"status": chosen or "", "overdue": overdue == "1", "due_within": hours or "",
               "partner": partner, "channel": channel}  # fmt: skip
    return page(
        request, "ops/claims.html", who, claims=shown, statuses=STATUSES, channels=list(Channel),
        filters=filters, error=error,
    )  # fmt: skip


@router.get("/{claim_id}", response_class=HTMLResponse)
def claim_screen(request: Request, who: StaffDep, claim_id: str) -> Response:
    require_staff(who, StaffPermission.CLAIMS)
    return _screen(request, who, claim_id)


def _screen(
    request: Request, who: Staff, claim_id: str, error: str | None = None, status: int = 200
) -> Response:
    with services(request).db.read_session() as session:
        claim = service.get_claim(session, claim_id)
        shown = operator_view(session, claim)
        claim_status = claim.status
        trail = audit.search(session, subject=shown.id)
        policy = rules.POLICIES[claim.policy_version]
        names = staff.names(session)
    not_covered = [rule for rule in policy.rules.values() if not rule.covered]
    return page(
        request, "ops/claim.html", who, status=status, claim=shown, error=error,
        trail=list(reversed(trail)), not_covered=not_covered, names=names,
        decidable=claim_status in service.DECIDABLE,
    )  # fmt: skip


@router.get("/{claim_id}/evidence/{evidence_id}")
def evidence_file(request: Request, who: StaffDep, claim_id: str, evidence_id: str) -> Response:
    """A screenshot, decrypted for this answer only (never cached, never sniffed)."""
    require_staff(who, StaffPermission.CLAIMS)
    svc = services(request)
    with svc.db.read_session() as session:
        claim = service.get_claim(session, claim_id)
        record = session.scalar(
            select(ClaimEvidence).where(
                ClaimEvidence.claim_id == claim.id, ClaimEvidence.public_id == evidence_id
            )
        )
        if record is None:
            raise service.ClaimNotFoundError(f"claim {claim_id} has no evidence {evidence_id}")
    data = svc.evidence.read(record.storage_key, record.key_id, record.sha256)
    return Response(
        data,
        media_type=record.media_type,
        headers={"Cache-Control": "no-store", "Content-Disposition": "inline"},
    )


def _decide(request: Request, session: Session, who: Staff, claim_id: str, form: FormData) -> None:
    """One decision on a claim, named by the form's action."""
    action, reason, actor = field(form, "action", 16), field(form, "reason", 2000), _actor(who)
    if action == "triage":
        service.triage(session, claim_id, actor)
    elif action == "request_info":
        service.request_info(session, claim_id, actor, reason)
    elif action == "escalate":
        holidays = services(request).settings.holiday_dates()
        service.escalate(session, claim_id, actor, reason, holidays)
    elif action == "approve":
        override = field(form, "override", 8) == "1"
        service.approve(session, claim_id, actor, reason, override=override)
    elif action == "reject":
        service.reject(session, claim_id, actor, reason, field(form, "rule", 64) or None)
    elif action == "resolve":
        service.resolve(session, claim_id, actor)
    elif action == "decide":
        _by_code(session, claim_id, actor, reason, form)
    else:
        raise InvalidInputError(f"unknown action {action!r}")


def _by_code(
    session: Session, claim_id: str, actor: service.Actor, reason: str, form: FormData
) -> None:
    """Approve some codes and reject others (``code-<position>`` = approve | reject)."""
    chosen = {
        position: value
        for name, value in form.multi_items()
        if name.startswith("code-")
        and (position := whole_number(name[5:], 6)) is not None
        and value in ("approve", "reject")
    }
    if not chosen:
        raise InvalidInputError("choose approve or reject for at least one code")
    service.decide(
        session, claim_id, actor, reason,
        approve=[p for p, v in chosen.items() if v == "approve"],
        reject=[p for p, v in chosen.items() if v == "reject"],
        rule=field(form, "rule", 64) or None, override=field(form, "override", 8) == "1",
    )  # fmt: skip


@router.post("/{claim_id}", response_class=HTMLResponse)
async def decide(request: Request, who: StaffDep, claim_id: str) -> Response:
    """Triage, Request info (its message goes to the partner), Escalate upstream, Approve
    (Override when a code is not eligible), Reject (with the rule), Resolve."""
    require_staff(who, StaffPermission.CLAIMS)
    form = await checked_form(request, who)
    try:
        with services(request).db.session() as session:
            _decide(request, session, who, claim_id, form)
    except DomainError as exc:
        return _screen(request, who, claim_id, error=exc.detail, status=http_status(exc))
    return redirect(f"/ops/claims/{claim_id}")
