"""What needs a person now: claims by their SLA, orders waiting for review, disabled webhook
endpoints, products running low, yesterday's reconciliation mismatches; and orders and claims
per day over the last 30 days. Each figure links to its page."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from codeshelf.claims import service as claims
from codeshelf.kit.clock import utcnow
from codeshelf.members.roles import StaffPermission
from codeshelf.orders.service import fulfilment, queries
from codeshelf.reconciliation import service as reconciliation
from codeshelf.stock import service as stock
from codeshelf.web import chart
from codeshelf.web.http import StaffDep, page, require_staff, services
from codeshelf.webhooks import service as webhooks

router = APIRouter(prefix="/ops")
LOW_COVER_DAYS = 7  # products whose free stock lasts fewer days than this, at recent sales


@router.get("/", response_class=HTMLResponse)
def overview(request: Request, who: StaffDep) -> Response:
    require_staff(who, StaffPermission.OVERVIEW)
    now = utcnow()
    yesterday = (now - timedelta(days=1)).date()
    with services(request).db.read_session() as session:
        queue = claims.overview(session, now)
        held = fulfilment.review_count(session)
        disabled = webhooks.endpoint_health(session, now - timedelta(days=7), disabled_only=True)
        orders = chart.count_bars(
            queries.orders_per_day(session, now - timedelta(days=chart.DAYS)), now.date()
        )
        day = reconciliation.operator_day(session, yesterday)
        low = stock.low_cover(session, now, LOW_COVER_DAYS)
    mismatched = sum(1 for line in day.lines if line.mismatch) + len(day.mismatches)
    filed = chart.count_bars(dict(queue.filed_per_day), now.date())
    return page(
        request, "ops/overview.html", who, queue=queue, held=held, disabled=disabled,
        orders=orders, filed=filed, chart=chart, yesterday=yesterday, mismatched=mismatched,
        low=low, low_days=LOW_COVER_DAYS,
    )  # fmt: skip
