"""``codeshelf orders review …``: the manual-review queue and its decisions."""

from __future__ import annotations

from typing import Any

import typer
from sqlalchemy.orm import Session

from codeshelf.cli import context
from codeshelf.cli.options import JsonOption, OperatorOption, RequiredReason, operator_name
from codeshelf.cli.output import domain_errors, emit, say, table
from codeshelf.kit.clock import utcnow
from codeshelf.orders import service
from codeshelf.orders.models import Order
from codeshelf.partners.models import Partner

orders_app = typer.Typer(no_args_is_help=True, help="Orders: the manual-review queue.")
review_app = typer.Typer(no_args_is_help=True, help="Orders held for manual review.")
orders_app.add_typer(review_app, name="review")


def _order_json(session: Session, order: Order) -> dict[str, Any]:
    partner = session.get_one(Partner, order.partner_id)
    return {
        "id": order.public_id,
        "partner_id": partner.public_id,
        "client_order_id": order.client_order_id,
        "status": order.status,
        "waiting_for": order.hold_reason,
        "failure_reason": order.failure_reason,
        "quantity": sum(item.quantity for item in order.items),
        "total": service.total_of(order).as_json(),
        "review_reasons": order.review_reasons,
        "created_at": order.created_at,
    }


@review_app.command("list")
def review_list(as_json: JsonOption = False) -> None:
    """Live orders held for review, oldest first, with why each was held."""
    with context.database().read_session() as session:
        data = [_order_json(session, order) for order in service.review_queue(session)]
    rows = [
        (
            o["id"],
            o["partner_id"],
            o["quantity"],
            f"{o['total']['amount']} {o['total']['currency']}",
            o["review_reasons"],
        )
        for o in data
    ]
    headers = ["order", "partner", "codes", "total", "why"]
    emit(data, as_json, lambda: table("Orders held for review", headers, rows))


def _decide(order_id: str, approve: bool, operator: str | None, reason: str, as_json: bool) -> None:
    actor = operator_name(operator)
    with domain_errors(), context.database().session() as session:
        order = service.decide_review(
            session,
            order_id,
            approve=approve,
            actor=actor,
            reason=reason,
            now=utcnow(),
            live_only=True,
        )
        data = _order_json(session, order)
    outcome = (
        data["status"] if data["waiting_for"] is None else f"waiting for {data['waiting_for']}"
    )
    emit(data, as_json, lambda: say(f"{order_id}: {outcome}"))


@review_app.command("approve")
def review_approve(
    order_id: str,
    reason: RequiredReason,
    operator: OperatorOption = None,
    as_json: JsonOption = False,
) -> None:
    """Approve: deliver now (or wait for stock if the order allows a backorder, else fail)."""
    _decide(order_id, True, operator, reason, as_json)


@review_app.command("reject")
def review_reject(
    order_id: str,
    reason: RequiredReason,
    operator: OperatorOption = None,
    as_json: JsonOption = False,
) -> None:
    """Reject: the order fails and its held money goes back to the partner's wallet."""
    _decide(order_id, False, operator, reason, as_json)
