"""Rendering pages, and who is looking at them: the signed-in member (``Viewer``), CSRF checks
on every form, and the refusals a page shows instead of raising."""

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
from codeshelf.members.roles import Permission, can
from codeshelf.members.service import signin
from codeshelf.partners.models import Partner
from codeshelf.web import security

HERE = Path(__file__).parent
LOGIN = "/account/login"

templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
templates.globals["evidence_text"] = rules.EVIDENCE_TEXT


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


class SignInRequiredError(Exception):
    """No live, fully signed-in session: the page answers with a redirect to sign in."""


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


def require(who: Viewer, permission: Permission) -> None:
    if not who.can(permission):
        raise ForbiddenError


async def checked_form(request: Request, who: Viewer | None = None) -> FormData:
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
    who: Viewer | None = None,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    """A rendered page. Pages before sign-in get a fresh double-submit CSRF token."""
    pre_token = None
    if who is None:
        pre_token = request.cookies.get(security.PRE_SESSION_COOKIE) or security.new_token()
    html = templates.get_template(template).render(
        request=request,
        who=who,
        Permission=Permission,
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
    return redirect(LOGIN)


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
