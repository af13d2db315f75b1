"""Signing in (password, then the authentication code), signing out, and accepting an
invitation (password, then TOTP enrolment, then the recovery codes, shown once): the same
pages for both doors, the portal's members (/account/) and the console's staff (/ops/), each
with its own session cookie, and neither's account accepted by the other."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from codeshelf.kit.clock import utcnow
from codeshelf.kit.errors import DomainError
from codeshelf.members.models import Invitation
from codeshelf.members.service import invitations, signin
from codeshelf.web import security
from codeshelf.web.http import (
    Door,
    checked_form,
    field,
    lifetimes,
    page,
    redirect,
    services,
    staff_viewer,
    viewer,
)

# Per client address, over both steps of every account: guessing across accounts is throttled
# as well as guessing one (which locks that account after five wrong tries).
ATTEMPTS_PER_ADDRESS = 20  # a minute


def _throttled(request: Request) -> str | None:
    address = request.client.host if request.client else "unknown"
    if services(request).limiter.hit(f"web-sign-in:{address}", ATTEMPTS_PER_ADDRESS).allowed:
        return None
    return "too many sign-in attempts from your address: wait a minute and try again"


def _open(session: Session, door: Door, token: str) -> Invitation:
    """The invitation of a link opened at ``door``: a staff invitation opens only under /ops/,
    a partner's only under /account/."""
    found = invitations.open_invitation(session, token, utcnow())
    if (found.partner_id is None) != door.staff:
        raise invitations.InvitationUnusableError(
            "this invitation link is unknown, used, revoked or expired: ask for a new one"
        )
    return found


def routes(door: Door) -> APIRouter:
    """The sign-in, sign-out and invitation pages of ``door``."""
    router = APIRouter(prefix=door.prefix)
    second_step = f"{door.prefix}/login/code"

    @router.get("/login", response_class=HTMLResponse)
    def login_page(request: Request) -> Response:
        return page(request, "login.html", error=None, email="")

    @router.post("/login", response_class=HTMLResponse)
    async def login(request: Request) -> Response:
        form = await checked_form(request)
        email, password = field(form, "email", 254), field(form, "password", 200)
        too_many = _throttled(request)
        if too_many:
            return page(request, "login.html", status=429, error=too_many, email=email)
        svc = services(request)
        refused: DomainError | None = None
        with svc.db.session() as session:  # committed even when refused: failures must count
            try:
                started = signin.check_password(
                    session, email, password, utcnow(), staff=door.staff
                )
            except signin.SignInRefusedError as exc:
                refused = exc
        if refused is not None:
            return page(request, "login.html", status=401, error=refused.detail, email=email)
        response = redirect(second_step)
        security.set_cookie(response, door.cookie, started.token)
        return response

    @router.get("/login/code", response_class=HTMLResponse)
    def code_page(request: Request) -> Response:
        return page(request, "login_code.html", error=None)

    @router.post("/login/code", response_class=HTMLResponse)
    async def code(request: Request) -> Response:
        form = await checked_form(request)
        too_many = _throttled(request)
        if too_many:
            return page(request, "login_code.html", status=429, error=too_many)
        svc = services(request)
        token = request.cookies.get(door.cookie, "")
        refused: DomainError | None = None
        with svc.db.session() as session:
            try:
                started = signin.check_second_factor(
                    session,
                    svc.vault,
                    token,
                    field(form, "code", 40),
                    utcnow(),
                    lifetimes(svc.settings),
                    staff=door.staff,
                )
            except signin.SignInRefusedError as exc:
                refused = exc
        if refused is not None:
            return page(request, "login_code.html", status=401, error=refused.detail)
        response = redirect(door.home)
        security.set_cookie(response, door.cookie, started.token)
        security.clear_cookie(response, security.PRE_SESSION_COOKIE)
        return response

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        who = staff_viewer(request) if door.staff else viewer(request)
        await checked_form(request, who)
        with services(request).db.session() as session:
            signin.sign_out(session, who.session_id, utcnow())
        response = redirect(door.login)
        security.clear_cookie(response, door.cookie)
        return response

    @router.get("/invite/{token}", response_class=HTMLResponse)
    def invite_page(request: Request, token: str) -> Response:
        svc = services(request)
        try:
            with svc.db.read_session() as session:
                invitation = _open(session, door, token)
                email, role = invitation.email, invitation.role
        except invitations.InvitationUnusableError as exc:
            return page(request, "message.html", status=404, title="Invitation", message=exc.detail)
        return page(request, "invite.html", token=token, email=email, role=role, error=None)

    @router.post("/invite/{token}", response_class=HTMLResponse)
    async def invite_password(request: Request, token: str) -> Response:
        form = await checked_form(request)
        password, again = field(form, "password", 200), field(form, "password_again", 200)
        svc = services(request)
        try:
            with svc.db.session() as session:
                invitation = _open(session, door, token)
                email, role = invitation.email, invitation.role
                if password != again:
                    raise invitations.WrongCodeError("the two passwords differ")
                enrolment = invitations.choose_password(
                    session, svc.vault, token, password, utcnow()
                )
        except invitations.InvitationUnusableError as exc:
            return page(request, "message.html", status=404, title="Invitation", message=exc.detail)
        except DomainError as exc:
            return page(
                request, "invite.html", status=422, token=token, email=email, role=role,
                error=exc.detail,
            )  # fmt: skip
        return page(request, "invite_totp.html", token=token, enrolment=enrolment, error=None)

    @router.post("/invite/{token}/confirm", response_class=HTMLResponse)
    async def invite_confirm(request: Request, token: str) -> Response:
        form = await checked_form(request)
        svc = services(request)
        refused: DomainError | None = None
        try:
            with svc.db.session() as session:
                _open(session, door, token)
                accepted = invitations.confirm(
                    session, svc.vault, token, field(form, "code", 40), utcnow()
                )
                email = accepted.member.email
        except invitations.InvitationUnusableError as exc:
            return page(request, "message.html", status=404, title="Invitation", message=exc.detail)
        except DomainError as exc:
            refused = exc
        if refused is not None:
            with svc.db.read_session() as session:
                enrolment = invitations.pending_enrolment(session, svc.vault, token, utcnow())
            return page(
                request, "invite_totp.html", status=422, token=token, enrolment=enrolment,
                error=refused.detail,
            )  # fmt: skip
        return page(request, "invite_done.html", email=email, codes=accepted.recovery_codes)

    return router
