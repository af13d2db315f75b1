"""The operator's order-review API under /api/v1/admin/orders, for operator keys only."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from codeshelf.api.deps import OperatorDep, ServicesDep
from codeshelf.kit.clock import utcnow
from codeshelf.operators.service import actor_name
from codeshelf.orders import service
from codeshelf.orders.models import Order
from codeshelf.orders.schemas import OrderOut
from codeshelf.orders.service import fulfilment
from codeshelf.partners.models import Partner

router = APIRouter(prefix="/admin", tags=["admin: orders"])


class ReviewDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Literal["approve", "reject"]
    reason: str = Field(min_length=1, max_length=2000, description="Kept in the audit log.")


class ReviewedOrderOut(OrderOut):
    partner_id: str
    review_reasons: str | None


class ReviewQueue(BaseModel):
    data: list[ReviewedOrderOut]


def admin_view(session: Session, order: Order) -> ReviewedOrderOut:
    products = service.products_by_id(session, {item.product_id for item in order.items})
    partner = session.get_one(Partner, order.partner_id)
    return ReviewedOrderOut(
        **OrderOut.of(order, products).model_dump(),
        partner_id=partner.public_id,
        review_reasons=order.review_reasons,
    )


@router.get("/orders/review", response_model=ReviewQueue)
def review_queue(operator: OperatorDep, services: ServicesDep) -> ReviewQueue:
    """Orders held for manual review, oldest first, with why each was held."""
    with services.db.read_session() as session:
        orders = fulfilment.review_queue(session)
        return ReviewQueue(data=[admin_view(session, order) for order in orders])


@router.post("/orders/{order_id}/review", response_model=ReviewedOrderOut)
def decide(
    order_id: str, body: ReviewDecision, operator: OperatorDep, services: ServicesDep
) -> ReviewedOrderOut:
    """Approve (the order is delivered, or waits for stock if it allows a backorder, or fails
    for want of stock) or reject (it fails and its hold goes back to the wallet)."""
    with services.db.session() as session:
        order = fulfilment.decide_review(
            session,
            order_id,
            approve=body.decision == "approve",
            actor=actor_name(operator),
            reason=body.reason,
            now=utcnow(),
            live_only=True,
        )
        return admin_view(session, order)
