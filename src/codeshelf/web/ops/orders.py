"""Orders held for review: why each was held, the partner's usual order size, and the
decision (approve or reject, with a reason), through the orders service's one review rule."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from codeshelf.kit.clock import utcnow
from codeshelf.kit.errors import DomainError, http_status
from codeshelf.members.roles import StaffPermission
from codeshelf.orders import service
from codeshelf.orders.schemas import OrderOut
from codeshelf.orders.service import fulfilment, review
from codeshelf.partners.models import Partner
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

router = APIRouter(prefix="/ops/orders")


def _queue(request: Request, who: Staff, error: str | None = None, status: int = 200) -> Response:
    with services(request).db.read_session() as session:
        held = fulfilment.review_queue(session)
        products = service.products_by_id(
            session, {item.product_id for order in held for item in order.items}
        )
        rows = [
            {
                "order": OrderOut.of(order, products),
                "partner": session.get_one(Partner, order.partner_id),
                "reasons": order.review_reasons,
                "usual": review.usual_quantity(session, order.partner_id),
            }
            for order in held
        ]
    return page(request, "ops/review.html", who, status=status, rows=rows, error=error)


@router.get("/review", response_class=HTMLResponse)
def review_queue(request: Request, who: StaffDep) -> Response:
    require_staff(who, StaffPermission.REVIEW_ORDERS)
    return _queue(request, who)


@router.post("/{order_id}/review", response_class=HTMLResponse)
async def decide(request: Request, who: StaffDep, order_id: str) -> Response:
    require_staff(who, StaffPermission.REVIEW_ORDERS)
    form = await checked_form(request, who)
    try:
        with services(request).db.session() as session:
            fulfilment.decide_review(
                session, order_id, approve=field(form, "decision", 8) == "approve",
                actor=who.actor, reason=field(form, "reason", 2000), now=utcnow(),
                live_only=True,
            )  # fmt: skip
    except DomainError as exc:
        return _queue(request, who, error=exc.detail, status=http_status(exc))
    return redirect("/ops/orders/review")
