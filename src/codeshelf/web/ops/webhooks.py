"""Every partner's webhook endpoints as the operator watches them: success rate over the last
days, the latest failure, disabled ones (and why) first; re-enable, and send again what an
endpoint gave up on."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from codeshelf.kit.clock import utcnow
from codeshelf.members.roles import StaffPermission
from codeshelf.partners.models import Partner
from codeshelf.web.http import (
    StaffDep,
    checked_form,
    field,
    page,
    redirect,
    require_staff,
    services,
)
from codeshelf.webhooks import service

router = APIRouter(prefix="/ops/webhooks")
DAYS = 7


@router.get("", response_class=HTMLResponse)
def endpoints(request: Request, who: StaffDep) -> Response:
    require_staff(who, StaffPermission.PARTNERS)
    with services(request).db.read_session() as session:
        found = service.endpoint_health(session, utcnow() - timedelta(days=DAYS))
        partners = {p.id: p for p in session.scalars(select(Partner))}
    return page(request, "ops/webhooks.html", who, endpoints=found, partners=partners, days=DAYS)


@router.post("/{endpoint_id}/enable", response_class=HTMLResponse)
async def enable(request: Request, who: StaffDep, endpoint_id: str) -> Response:
    """Re-enable; with ``retry=1`` also send once more every delivery it gave up on."""
    require_staff(who, StaffPermission.PARTNERS)
    form = await checked_form(request, who)
    with services(request).db.session() as session:
        endpoint = service.find_endpoint(session, endpoint_id)
        partner = session.get_one(Partner, endpoint.partner_id)
        service.enable_endpoint(session, partner, endpoint_id, who.actor)
        if field(form, "retry", 1) == "1":
            service.retry_failed(session, endpoint, who.actor)
    return redirect("/ops/webhooks")
