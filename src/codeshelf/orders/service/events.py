"""What an order tells the partner: the outbox events of its lifecycle (webhooks and the
events feed), written in the transaction of the change they report."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from codeshelf.orders.models import (
    Order,
    OrderStatus,
    total_of,
)
from codeshelf.webhooks import service as webhooks

ORDER_CREATED = "order.created"


def event_fields(order: Order) -> dict[str, Any]:
    """What every order event says about the order (seed 003: order id and status, and more)."""
    return {
        "order_id": order.public_id,
        "client_order_id": order.client_order_id,
        "kind": order.kind,
        "status": order.status,
        "review_required": order.review_required,
        "backorder_until": None
        if order.backorder_until is None
        else order.backorder_until.isoformat(),
        "failure_reason": order.failure_reason,
        "total": total_of(order).as_json(),
    }


def notify(session: Session, order: Order, event_type: str) -> None:
    webhooks.emit(session, order.partner_id, event_type, event_fields(order))


def notify_fulfilled(session: Session, order: Order, *, created: bool = True) -> None:
    """The outbox events of an order delivered now (created, too, unless it waited)."""
    fields = event_fields(order)
    events = [("order.paid", {**fields, "status": OrderStatus.PAID}), ("order.fulfilled", fields)]
    if created:
        events.insert(0, (ORDER_CREATED, {**fields, "status": OrderStatus.PENDING}))
    webhooks.emit_many(session, order.partner_id, events)
