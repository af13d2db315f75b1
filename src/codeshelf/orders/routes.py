from __future__ import annotations

import json
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Request, Response
from sqlalchemy.orm import Session

from codeshelf.api import idempotency
from codeshelf.api.deps import PrincipalDep, ServicesDep
from codeshelf.kit import paging
from codeshelf.kit.schemas import PRINTABLE, UTCDateTime
from codeshelf.orders import service
from codeshelf.orders.models import Order
from codeshelf.orders.schemas import CodeOut, OrderCodes, OrderCreate, OrderOut, OrderPage
from codeshelf.orders.service import submission

router = APIRouter(tags=["orders"])


def _order_json(session: Session, order: Order) -> OrderOut:
    products = service.products_by_id(session, {item.product_id for item in order.items})
    return OrderOut.of(order, products)


@router.post(
    "/orders",
    status_code=201,
    response_model=OrderOut,
)
def create_order(
    payload: OrderCreate,
    request: Request,
    principal: PrincipalDep,
    services: ServicesDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="Required (or the body's idempotency_key): a UUID, at most 255 chars.",
        ),
    ] = None,
) -> Response:
    """Place a bulk order: paid from the wallet and delivered at once, or refused whole.

    It stays `pending` (its total held) when it needs the operator's review, or when stock is
    short and `allow_backorder` is set; webhooks and the events feed say how it ends.
    """
    key = idempotency.parse_key(idempotency_key, payload.idempotency_key)
    stored = submission.submit(
        services.db,
        services.settings,
        principal.partner,
        payload,
        key,
        idempotency.refusal_renderer(request.url.path),
    )
    headers = {}
    if stored.status == 201:
        headers["Location"] = f"/api/v1/orders/{_order_id(stored.body)}"
    return idempotency.replay_response(stored, headers)


def _order_id(body: str) -> str:
    order_id: str = json.loads(body)["id"]
    return order_id


@router.get("/orders", response_model=OrderPage)
def list_orders(
    principal: PrincipalDep,
    services: ServicesDep,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    status: Literal["pending", "paid", "delivered", "failed"] | None = None,
    client_order_id: Annotated[str | None, Query(max_length=128, pattern=PRINTABLE)] = None,
    updated_since: Annotated[
        UTCDateTime | None,
        Query(description="Only orders changed at or after this time (with a time zone)."),
    ] = None,
) -> OrderPage:
    """The partner's orders, newest first; `updated_since` is the polling fallback."""
    with services.db.read_session() as session:
        orders = service.list_orders(
            session,
            principal.partner.id,
            before=cursor,
            limit=paging.fetch_size(limit),
            status=status,
            client_order_id=client_order_id,
            updated_since=updated_since,
        )
        shown, next_cursor = paging.cut(orders, limit, lambda order: order.public_id)
        data = [_order_json(session, order) for order in shown]
    return OrderPage(data=data, next_cursor=next_cursor)


@router.get("/orders/{order_id}", response_model=OrderOut)
def get_order(order_id: str, principal: PrincipalDep, services: ServicesDep) -> OrderOut:
    """One of your orders: its status (and what a `pending` one waits for), items and total."""
    with services.db.read_session() as session:
        return _order_json(session, service.get_order(session, principal.partner.id, order_id))


@router.get("/orders/{order_id}/codes", response_model=OrderCodes)
def get_order_codes(
    order_id: str, response: Response, principal: PrincipalDep, services: ServicesDep
) -> OrderCodes:
    """The plaintext codes of a delivered order. Every call is recorded in the audit log."""
    with services.db.session() as session:
        order, codes = service.reveal_codes(
            session, services.vault, principal.partner, principal.api_key, order_id
        )
    response.headers["Cache-Control"] = "no-store"
    return OrderCodes(
        order_id=order.public_id,
        count=len(codes),
        codes=[
            CodeOut(product_id=code.product_id, code=code.code, state=code.state) for code in codes
        ],
    )
