"""What needs a person now: claims by their SLA, orders waiting for review, disabled webhook
endpoints; and orders per day over the last 30 days. Each figure links to its page."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from codeshelf.claims import service as claims
from codeshelf.claims.models import ClaimStatus
from codeshelf.kit.clock import utcnow
from codeshelf.orders.service import fulfilment, queries
from codeshelf.web import chart
from codeshelf.web.http import StaffDep, page, services
from codeshelf.webhooks import service as webhooks

router = APIRouter(prefix="/ops")
DUE_SOON = timedelta(hours=4)


@router.get("/", response_class=HTMLResponse)
def overview(request: Request, who: StaffDep) -> Response:
    now = utcnow()
    with services(request).db.read_session() as session:
        open_claims = claims.queue(session, limit=10_000)
        overdue = [c for c in open_claims if c.due_at is not None and c.due_at < now]
        soon = [c for c in open_claims if c.due_at is not None and now <= c.due_at < now + DUE_SOON]
        waiting = [c for c in open_claims if c.status == ClaimStatus.NEEDS_INFO]
        held = len(fulfilment.review_queue(session))
        disabled = webhooks.endpoint_health(session, now - timedelta(days=7), disabled_only=True)
        orders = chart.count_bars(
            queries.orders_per_day(session, now - timedelta(days=chart.DAYS)), now.date()
        )
    return page(
        request, "ops/overview.html", who, overdue=len(overdue), due_soon=len(soon),
        waiting=len(waiting), held=held, disabled=disabled, orders=orders, chart=chart,
    )  # fmt: skip
