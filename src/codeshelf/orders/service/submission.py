"""An order as a client submits it: once per idempotency key, whichever door it comes through
(the API's POST /orders, the portal's New order form), judged and stored the same way.

The steps are called through the service's namespace (``service.place_order``), the names
every door and test knows them by."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session

from codeshelf.idempotency import service as keys
from codeshelf.kit.clock import utcnow
from codeshelf.kit.db import Database
from codeshelf.kit.errors import DomainError
from codeshelf.kit.settings import Settings
from codeshelf.orders import service
from codeshelf.orders.schemas import OrderCreate, OrderOut
from codeshelf.partners.models import Partner

# The request every order's key is fingerprinted as, whichever door it came through.
FINGERPRINTED_AS = ("POST", "/api/v1/orders")


def submit(
    db: Database,
    settings: Settings,
    partner: Partner,
    payload: OrderCreate,
    key: str,
    refusal: Callable[[DomainError], tuple[int, str]],
) -> keys.StoredResponse:
    """Place ``payload`` once for ``key``: the stored answer (201 and the order as JSON, or a
    business refusal as ``refusal`` renders it), replayed for a retry with the same key."""
    items = payload.item_requests()
    service.check_quantities(items, settings.max_order_quantity)
    limits = service.ReviewLimits.for_partner(partner, settings)

    def work(session: Session) -> tuple[int, str]:
        # Judged here, after the key's claim: a retry of a stored order replays it, even once
        # its deadline has passed.
        backorder_until = service.backorder_deadline(
            payload.allow_backorder, payload.backorder_until, settings.backorder_max_hours, utcnow()
        )
        priced = service.price_items(session, partner, items)
        order = service.place_order(
            session,
            partner,
            priced,
            payload.client_order_id,
            backorder_until=backorder_until,
            limits=limits,
        )
        products = {line.product.id: line.product for line in priced}
        return 201, OrderOut.of(order, products).model_dump_json()

    return keys.run(
        db,
        settings,
        partner_id=partner.id,
        key=key,
        request_fingerprint=keys.fingerprint(*FINGERPRINTED_AS, payload.fingerprint_payload()),
        work=work,
        refusal=refusal,
    )
