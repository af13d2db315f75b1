"""Team: the partner's members and their roles, invitations (the link shown once, for the
inviter to pass on), role changes and removal; the rules are the members service's."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from codeshelf.kit.clock import utcnow
from codeshelf.kit.errors import DomainError, http_status
from codeshelf.members.roles import Permission, Role
from codeshelf.members.service import team
from codeshelf.web.http import (
    Viewer,
    ViewerDep,
    checked_form,
    field,
    page,
    redirect,
    require,
    services,
)

router = APIRouter(prefix="/account/team")


def _team(
    request: Request,
    who: Viewer,
    *,
    error: str | None = None,
    link: str | None = None,
    status: int = 200,
) -> Response:
    svc = services(request)
    with svc.db.read_session() as session:
        people = team.members(session, who.partner.id)
        waiting = team.open_invitations(session, who.partner.id, utcnow())
    roles = [role for role in Role if role != Role.OWNER or who.can(Permission.OWNERS)]
    return page(
        request, "team.html", who, status=status, members=people, invitations=waiting,
        roles=roles, error=error, link=link,
    )  # fmt: skip


@router.get("", response_class=HTMLResponse)
def team_page(request: Request, who: ViewerDep) -> Response:
    require(who, Permission.TEAM)
    return _team(request, who)


@router.post("/invite", response_class=HTMLResponse)
async def invite(request: Request, who: ViewerDep) -> Response:
    require(who, Permission.TEAM)
    form = await checked_form(request, who)
    svc = services(request)
    try:
        with svc.db.session() as session:
            issued = team.invite(
                session, who.member, who.partner, field(form, "email", 254),
                field(form, "role", 16), utcnow(),
            )  # fmt: skip
            link = svc.settings.public_url.rstrip("/") + issued.path
    except DomainError as exc:
        return _team(request, who, error=exc.detail, status=http_status(exc))
    return _team(request, who, link=link)


@router.post("/{member_id}/role", response_class=HTMLResponse)
async def change_role(request: Request, who: ViewerDep, member_id: str) -> Response:
    require(who, Permission.TEAM)
    form = await checked_form(request, who)
    svc = services(request)
    try:
        with svc.db.session() as session:
            team.change_role(session, who.member, who.partner, member_id, field(form, "role", 16))
    except DomainError as exc:
        return _team(request, who, error=exc.detail, status=http_status(exc))
    return redirect("/account/team")


@router.post("/{member_id}/remove", response_class=HTMLResponse)
async def remove(request: Request, who: ViewerDep, member_id: str) -> Response:
    require(who, Permission.TEAM)
    await checked_form(request, who)
    svc = services(request)
    try:
        with svc.db.session() as session:
            team.remove(session, who.member, who.partner, member_id, utcnow())
    except DomainError as exc:
        return _team(request, who, error=exc.detail, status=http_status(exc))
    return redirect("/account/team")
