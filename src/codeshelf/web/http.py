"""Rendering pages, and who is looking at them: the signed-in member of a partner (``Viewer``,
the portal) or of the staff (``Staff``, the console), CSRF checks on every form, and the
refusals a page shows instead of raising.

The two doors share the sign-in machinery but never a session: each has its own cookie, and
a session opens only its own door (``signin.current(..., staff=…)``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any, Protocol

import jinja2
from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from codeshelf.claims import policy as rules
from codeshelf.claims.evidence import EvidenceStore
from codeshelf.kit.clock import utcnow
from codeshelf.kit.db import Database
from codeshelf.kit.settings import Settings
from codeshelf.kit.vault import Vault
from codeshelf.members.models import Member
from codeshelf.members.roles import Permission, StaffPermission, can, staff_can
from codeshelf.members.service import signin
from codeshelf.partners.models import Partner
from codeshelf.web import security

HERE = Path(__file__).parent


@dataclass(frozen=True)
class Door:
    """One of the two signed-in parts of the site."""

    prefix: str
    cookie: str
    staff: bool
    name: str
    base: str  # the template pages extend

    @property
    def login(self) -> str:
        return f"{self.prefix}/login"

    @property
    def home(self) -> str:
        return f"{self.prefix}/"


PORTAL = Door("/account", security.SESSION_COOKIE, False, "partner portal", "base.html")
CONSOLE = Door("/ops", security.OPS_SESSION_COOKIE, True, "operator console", "ops/base.html")
LOGIN = PORTAL.login


def door_of(request: Request) -> Door:
    return CONSOLE if request.url.path.startswith(CONSOLE.prefix) else PORTAL


templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
templates.globals["evidence_text"] = rules.EVIDENCE_TEXT
templates.globals["Permission"] = Permission
templates.globals["StaffPermission"] = StaffPermission


class Decision(Protocol):
    allowed: bool
    reset_seconds: int


class Limiter(Protocol):
    def hit(self, key: str, per_minute: int) -> Decision: ...

    def hit_window(self, key: str, quota: int, seconds: int) -> Decision: ...


class Services(Protocol):
    """What pages use of the app's services (``app.state.services``)."""

    settings: Settings
    db: Database
    vault: Vault
    limiter: Limiter
    evidence: EvidenceStore


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


def lifetimes(settings: Settings) -> signin.Lifetimes:
    return signin.Lifetimes(
        idle=timedelta(minutes=settings.web_session_idle_minutes),
        absolute=timedelta(hours=settings.web_session_hours),
    )


@dataclass(frozen=True)
class Viewer:
    """The signed-in member looking at a page, its partner, and its session's CSRF token."""

    member: Member
    partner: Partner
    csrf_token: str
    session_id: int

    @property
    def actor(self) -> str:
        return f"member:{self.member.public_id}"

    def can(self, permission: Permission) -> bool:
        return can(self.member.role, permission)


@dataclass(frozen=True)
class Staff:
    """The signed-in staff member looking at a console page, and its session's CSRF token."""

    member: Member
    csrf_token: str
    session_id: int

    @property
    def actor(self) -> str:
        return f"staff:{self.member.public_id}"

    def can(self, permission: StaffPermission) -> bool:
        return staff_can(self.member.role, permission)


class SignInRequiredError(Exception):
    """No live, fully signed-in session: the page answers with a redirect to sign in."""

    def __init__(self, door: Door = PORTAL) -> None:
        super().__init__(door.login)
        self.door = door


class ForbiddenError(Exception):
    """The member's role does not allow this page or action."""


def viewer(request: Request) -> Viewer:
    svc = services(request)
    token = request.cookies.get(security.SESSION_COOKIE)
    with svc.db.session() as session:  # committed: a session found expired is ended for good
        found = signin.current(session, token, utcnow(), lifetimes(svc.settings))
        if found is not None:
            web, member = found
            partner = session.get(Partner, member.partner_id)
            assert partner is not None
            signed_in = Viewer(member, partner, web.csrf_token, web.id)
    if found is None:
        raise SignInRequiredError
    return signed_in


ViewerDep = Annotated[Viewer, Depends(viewer)]


def staff_viewer(request: Request) -> Staff:
    svc = services(request)
    token = request.cookies.get(CONSOLE.cookie)
    with svc.db.session() as session:
        found = signin.current(session, token, utcnow(), lifetimes(svc.settings), staff=True)
        if found is not None:
            web, member = found
            signed_in = Staff(member, web.csrf_token, web.id)
    if found is None:
        raise SignInRequiredError(CONSOLE)
    return signed_in


StaffDep = Annotated[Staff, Depends(staff_viewer)]


def require(who: Viewer, permission: Permission) -> None:
    if not who.can(permission):
        raise ForbiddenError


def require_staff(who: Staff, permission: StaffPermission) -> None:
    if not who.can(permission):
        raise ForbiddenError


async def checked_form(request: Request, who: Viewer | Staff | None = None) -> FormData:
    """The POSTed form, once its origin and CSRF token check out (else ForbiddenError)."""
    form = await request.form()
    presented = form.get(security.CSRF_FIELD) or request.headers.get(security.CSRF_HEADER)
    expected = who.csrf_token if who else request.cookies.get(security.PRE_SESSION_COOKIE)
    if not security.same_origin(request) or not security.token_matches(
        expected, presented if isinstance(presented, str) else None
    ):
        raise ForbiddenError
    return form


def field(form: FormData, name: str, max_length: int = 500) -> str:
    value = form.get(name)
    return value[:max_length] if isinstance(value, str) else ""


def page(
    request: Request,
    template: str,
    who: Viewer | Staff | None = None,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    """A rendered page of the door its path is under. Pages before sign-in get a fresh
    double-submit CSRF token."""
    pre_token = None
    if who is None:
        pre_token = request.cookies.get(security.PRE_SESSION_COOKIE) or security.new_token()
    html = templates.get_template(template).render(
        request=request,
        who=who,
        door=door_of(request),
        csrf_token=who.csrf_token if who else pre_token,
        **context,
    )
    response = HTMLResponse(html, status_code=status)
    if pre_token is not None:
        security.set_cookie(response, security.PRE_SESSION_COOKIE, pre_token)
    return response


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def sign_in_redirect(request: Request) -> RedirectResponse:
    return redirect(door_of(request).login)


def whole_number(text: str, digits: int | None = None) -> int | None:
    """``text`` as a whole number when it is ASCII digits (at most ``digits`` of them), else
    None: ``"²".isdigit()`` is true, and ``int("²")`` raises, which a page must not."""
    if text.isascii() and text.isdigit() and (digits is None or len(text) <= digits):
        return int(text)
    return None


def parse_day(value: str) -> date | None:
    """A ``YYYY-MM-DD`` form or query value, or None when empty or not a day."""
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def csv_download(filename: str, text: str) -> Response:
    """A CSV file for the browser to save (never cached, like every portal answer)."""
    return Response(
        text,
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
