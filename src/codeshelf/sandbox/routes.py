"""/api/v1/sandbox/…: rehearsal tools for cs_test_ keys (a live key gets 403 sandbox-only)."""

from __future__ import annotations

from fastapi import APIRouter

from codeshelf.api.deps import PrincipalDep, ServicesDep
from codeshelf.kit.errors import InvalidInputError
from codeshelf.kit.money import InvalidMoneyError, Money
from codeshelf.kit.schemas import MoneyOut
from codeshelf.orders.schemas import OrderOut
from codeshelf.orders.service import products_by_id
from codeshelf.sandbox import service
from codeshelf.sandbox.schemas import (
    Restocked,
    SandboxReview,
    TopUpIn,
    TopUpOut,
    TriggerIn,
    TriggerOut,
)

router = APIRouter(prefix="/sandbox", tags=["sandbox"])


@router.post("/deposits", response_model=TopUpOut, status_code=201)
def top_up(body: TopUpIn, principal: PrincipalDep, services: ServicesDep) -> TopUpOut:
    """Add test funds to the sandbox wallet."""
    try:
        money = Money.parse(body.amount, body.currency)
    except InvalidMoneyError as exc:
        raise InvalidInputError(str(exc), pointer="#/amount") from exc
    with services.db.session() as session:
        result = service.top_up(session, principal.partner, money)
        txn_id = result.transaction.public_id
    return TopUpOut(transaction_id=txn_id, balance=MoneyOut.of(result.balance))


@router.post("/restock", response_model=Restocked)
def restock(principal: PrincipalDep, services: ServicesDep) -> Restocked:
    """Deliver every waiting sandbox backorder, as a stock delivery would."""
    with services.db.session() as session:
        delivered = service.restock(session, principal.partner)
    return Restocked(delivered_order_ids=delivered)


@router.post("/orders/{order_id}/review", response_model=OrderOut)
def review(
    order_id: str, body: SandboxReview, principal: PrincipalDep, services: ServicesDep
) -> OrderOut:
    """Decide one of your sandbox orders held for review, as the operator would."""
    with services.db.session() as session:
        order = service.decide_review(
            session, principal.partner, order_id, body.decision == "approve"
        )
        products = products_by_id(session, {item.product_id for item in order.items})
        return OrderOut.of(order, products)


@router.post("/webhooks/trigger", response_model=TriggerOut, status_code=202)
def trigger(body: TriggerIn, principal: PrincipalDep, services: ServicesDep) -> TriggerOut:
    """Send a sample event (`"sample": true`) of any type to your sandbox endpoints."""
    with services.db.session() as session:
        event_id = service.trigger(session, principal.partner, body.event)
    return TriggerOut(event_id=event_id)
