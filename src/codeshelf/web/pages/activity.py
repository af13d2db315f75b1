"""Activity: the partner's own audit trail, searchable. Members are shown by e-mail, API
keys by id, and the operator's people as "codeshelf" (their names are the operator's)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from codeshelf.audit import service as audit
from codeshelf.kit import paging
from codeshelf.members.roles import Permission
from codeshelf.members.service import team
from codeshelf.web.http import ViewerDep, page, require, services, whole_number

router = APIRouter(prefix="/account")
PAGE_SIZE = 50


@router.get("/activity", response_class=HTMLResponse)
def activity(request: Request, who: ViewerDep, q: str = "", before: str = "") -> Response:
    require(who, Permission.ACTIVITY)
    svc = services(request)
    search = q.strip()[:100]
    with svc.db.read_session() as session:
        events = audit.partner_trail(
            session,
            who.partner.public_id,
            search=search or None,
            before=whole_number(before, 18),
            limit=paging.fetch_size(PAGE_SIZE),
        )
        events, following = paging.cut(events, PAGE_SIZE, lambda event: event.id)
        emails = {f"member:{m.public_id}": m.email for m in team.members(session, who.partner.id)}
    rows = [(event, _who(event.actor, event.api_key_public_id, emails)) for event in events]
    return page(request, "activity.html", who, rows=rows, q=search, next_before=following)


def _who(actor: str, key: str | None, emails: dict[str, str]) -> str:
    if actor in emails:
        return emails[actor]
    if actor.startswith("member:"):
        return "a former member"
    if actor.startswith("partner:"):
        return f"API key {key}" if key else "your API"
    return "codeshelf"
