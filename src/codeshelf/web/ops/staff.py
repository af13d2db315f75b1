"""The staff: who signs in to the console with which role; invitations (the link is shown
once, for the inviting admin to pass on), role changes and removal, by the staff service."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from codeshelf.kit.clock import utcnow
from codeshelf.kit.errors import DomainError, http_status
from codeshelf.members.roles import StaffPermission, StaffRole
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
)

router = APIRouter(prefix="/ops/staff")


def _staff(
    request: Request, who: Staff, *, error: str | None = None, link: str | None = None,
    status: int = 200,
) -> Response:  # fmt: skip
    with services(request).db.read_session() as session:
        people = staff.staff(session)
        waiting = staff.open_invitations(session, utcnow())
    return page(
        request, "ops/staff.html", who, status=status, members=people, invitations=waiting,
        roles=list(StaffRole), error=error, link=link,
    )  # fmt: skip


@router.get("", response_class=HTMLResponse)
def staff_page(request: Request, who: StaffDep) -> Response:
    require_staff(who, StaffPermission.STAFF)
    return _staff(request, who)


@router.post("/invite", response_class=HTMLResponse)
async def invite(request: Request, who: StaffDep) -> Response:
    require_staff(who, StaffPermission.STAFF)
    form = await checked_form(request, who)
    svc = services(request)
    try:
        with svc.db.session() as session:
            issued = staff.invite(
                session, who.member, field(form, "email", 254), field(form, "role", 16), utcnow()
            )
            link = svc.settings.public_url.rstrip("/") + issued.path
    except DomainError as exc:
        return _staff(request, who, error=exc.detail, status=http_status(exc))
    return _staff(request, who, link=link)


@router.post("/{member_id}/role", response_class=HTMLResponse)
async def change_role(request: Request, who: StaffDep, member_id: str) -> Response:
    require_staff(who, StaffPermission.STAFF)
    form = await checked_form(request, who)
    try:
        with services(request).db.session() as session:
            staff.change_role(session, who.member, member_id, field(form, "role", 16))
    except DomainError as exc:
        return _staff(request, who, error=exc.detail, status=http_status(exc))
    return redirect("/ops/staff")


@router.post("/{member_id}/remove", response_class=HTMLResponse)
async def remove(request: Request, who: StaffDep, member_id: str) -> Response:
    require_staff(who, StaffPermission.STAFF)
    await checked_form(request, who)
    try:
        with services(request).db.session() as session:
            staff.remove(session, who.member, member_id, utcnow())
    except DomainError as exc:
        return _staff(request, who, error=exc.detail, status=http_status(exc))
    return redirect("/ops/staff")
