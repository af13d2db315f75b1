"""The orders service: pricing, placement, the events an order emits, reading orders, and
what happens to pending orders afterwards (backorders filled or expired, reviews decided).

Doors call these names from here; each lives in the module of its seam.
"""

from codeshelf.orders.models import ORDER_PREFIX, total_of
from codeshelf.orders.service.events import ORDER_CREATED, event_fields, notify, notify_fulfilled
from codeshelf.orders.service.fulfilment import (
    NotUnderReviewError,
    decide_review,
    expire_backorders,
    fill_backorders,
    review_queue,
    tick,
)
from codeshelf.orders.service.placement import (
    DuplicateClientOrderIdError,
    allocate_items,
    backorder_deadline,
    fail,
    hold,
    mark_delivered,
    place_order,
    place_replacement,
    start_waiting,
    start_waiting_for_stock,
    stop_waiting_for_stock,
)
from codeshelf.orders.service.pricing import (
    REGION_MISMATCH_MESSAGE,
    ItemRequest,
    MixedCurrencyError,
    PricedItem,
    UnknownProductError,
    check_quantities,
    price_items,
)
from codeshelf.orders.service.queries import (
    CodesNotReadyError,
    OrderNotFoundError,
    RevealedCode,
    counts_by_state,
    delivered_codes,
    delivered_totals,
    find_by_client_order_id,
    get_order,
    list_orders,
    orders_of_the_day,
    products_by_id,
    public_ids,
    reveal_codes,
    reveal_one_code,
)
from codeshelf.orders.service.review import ReviewLimits

__all__ = [
    "ORDER_CREATED",
    "ORDER_PREFIX",
    "REGION_MISMATCH_MESSAGE",
    "CodesNotReadyError",
    "DuplicateClientOrderIdError",
    "ItemRequest",
    "MixedCurrencyError",
    "NotUnderReviewError",
    "OrderNotFoundError",
    "PricedItem",
    "RevealedCode",
    "ReviewLimits",
    "UnknownProductError",
    "allocate_items",
    "backorder_deadline",
    "check_quantities",
    "counts_by_state",
    "decide_review",
    "delivered_codes",
    "delivered_totals",
    "event_fields",
    "expire_backorders",
    "fail",
    "fill_backorders",
    "find_by_client_order_id",
    "get_order",
    "hold",
    "list_orders",
    "mark_delivered",
    "notify",
    "notify_fulfilled",
    "orders_of_the_day",
    "place_order",
    "place_replacement",
    "price_items",
    "products_by_id",
    "public_ids",
    "reveal_codes",
    "reveal_one_code",
    "review_queue",
    "start_waiting",
    "start_waiting_for_stock",
    "stop_waiting_for_stock",
    "tick",
    "total_of",
]
