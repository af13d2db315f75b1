from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    model_validator,
)

from codeshelf.catalog.models import Product
from codeshelf.catalog.service import face_value
from codeshelf.kit.money import Money
from codeshelf.kit.schemas import PRINTABLE, MoneyOut, Page, UTCDateTime
from codeshelf.orders import service
from codeshelf.orders.models import HoldReason, Order, OrderStatus
from codeshelf.orders.service import ItemRequest

Quantity = Annotated[
    StrictInt,
    Field(ge=1, validation_alias=AliasChoices("quantity", "qty"), description="1 or more"),
]


def _one_of_quantity_or_qty(schema: dict[str, Any]) -> None:
    """``qty`` is ``quantity``'s other name (the supplier's guide uses it): the schema says so,
    as a property of its own and one of the two, never both (pydantic refuses both)."""
    properties = schema["properties"]
    properties["qty"] = {**properties["quantity"], "title": "Qty", "description": "= quantity"}
    schema["required"] = [name for name in schema.get("required", []) if name != "quantity"]
    if not schema["required"]:
        del schema["required"]


def _item_schema(schema: dict[str, Any]) -> None:
    _one_of_quantity_or_qty(schema)
    schema["allOf"] = [
        {"oneOf": [{"required": ["quantity"]}, {"required": ["qty"]}]},
        {
            "anyOf": [
                {"required": ["product_id"], "properties": {"product_id": {"type": "string"}}},
                {
                    "required": ["region", "denomination"],
                    "properties": {
                        "region": {"type": "string"},
                        "denomination": {"type": ["number", "string"]},
                    },
                },
            ]
        },
    ]


def _order_schema(schema: dict[str, Any]) -> None:
    """The two forms of the seeds: ``items``, or the flat ``product_id`` + ``quantity``."""
    _one_of_quantity_or_qty(schema)
    schema["allOf"] = [{"oneOf": _forms()}]
    schema["examples"] = [  # as the seeds write them (003, then 002)
        {
            "product_id": "psn-us-50",
            "quantity": 2,
            "client_order_id": "ORDER-1042",
            "idempotency_key": "8d91b0",
        },
        {
            "items": [
                {"region": "US", "denomination": 50, "qty": 10},
                {"region": "TR", "denomination": 250, "qty": 5},
            ]
        },
    ]


def _forms() -> list[dict[str, Any]]:
    absent = {"type": "null"}
    return [
        {
            "title": "Items",
            "required": ["items"],
            "properties": {
                "items": {"type": "array"},
                "product_id": absent,
                "quantity": absent,
                "qty": absent,
            },
        },
        {
            "title": "One product",
            "required": ["product_id"],
            "properties": {"items": absent, "product_id": {"type": "string"}},
            "oneOf": [
                {"required": ["quantity"], "properties": {"quantity": {"type": "integer"}}},
                {"required": ["qty"], "properties": {"qty": {"type": "integer"}}},
            ],
        },
    ]


ProductId = Annotated[
    str, Field(min_length=1, max_length=64, pattern=PRINTABLE, examples=["psn-us-50"])
]


class OrderItemIn(BaseModel):
    """A line naming a product, or a region and denomination (``qty`` is accepted too)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_item_schema)

    product_id: ProductId | None = None
    region: str | None = Field(
        default=None, min_length=2, max_length=8, pattern=PRINTABLE, examples=["US"]
    )
    denomination: Decimal | None = Field(default=None, gt=0, max_digits=14, examples=[50])
    currency: str | None = Field(default=None, min_length=3, max_length=3, pattern=PRINTABLE)
    platform: str | None = Field(default=None, max_length=16, pattern=PRINTABLE)
    quantity: Quantity

    @model_validator(mode="after")
    def names_a_product(self) -> Self:
        if self.product_id is None and (self.region is None or self.denomination is None):
            raise ValueError("give product_id, or region and denomination")
        return self


class OrderCreate(BaseModel):
    """Either ``items`` or ``product_id`` + ``quantity`` (the two forms of the seeds)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_order_schema)

    items: list[OrderItemIn] | None = Field(default=None, min_length=1, max_length=100)
    product_id: ProductId | None = None
    quantity: StrictInt | None = Field(
        default=None, ge=1, validation_alias=AliasChoices("quantity", "qty")
    )
    client_order_id: str | None = Field(
        default=None, min_length=1, max_length=128, pattern=PRINTABLE
    )
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=255)
    allow_backorder: bool = Field(
        default=False,
        description="When stock is short, accept the order as `pending` with its total held, "
        "and deliver it whole as stock arrives, first come first served; otherwise it fails at "
        "`backorder_until` and the hold is released.",
    )
    backorder_until: UTCDateTime | None = Field(
        default=None,
        description="The backorder's deadline (default and maximum: CODESHELF_BACKORDER_MAX_HOURS "
        "from now, 72 hours unless the operator changed it).",
    )

    @model_validator(mode="after")
    def one_form(self) -> Self:
        single = self.product_id is not None or self.quantity is not None
        if self.items is not None and single:
            raise ValueError("send either items, or product_id and quantity, not both")
        if self.items is None and (self.product_id is None or self.quantity is None):
            raise ValueError("send items, or product_id and quantity")
        return self

    def item_requests(self) -> list[ItemRequest]:
        if self.items is None:
            assert self.product_id is not None and self.quantity is not None
            return [ItemRequest(quantity=self.quantity, pointer="#", product_id=self.product_id)]
        return [
            ItemRequest(
                quantity=item.quantity,
                pointer=f"#/items/{index}",
                product_id=item.product_id,
                region=item.region,
                denomination=item.denomination,
                currency=item.currency,
                platform=item.platform,
            )
            for index, item in enumerate(self.items)
        ]

    def fingerprint_payload(self) -> dict[str, object]:
        """The request as the idempotency fingerprint sees it: 50 and 50.0, us and US agree."""
        payload = self.model_dump(mode="json", exclude={"idempotency_key"})
        for item in payload.get("items") or []:
            if item.get("denomination") is not None:
                item["denomination"] = str(Decimal(item["denomination"]).normalize())
            for name in ("region", "currency"):
                if item.get(name) is not None:
                    item[name] = item[name].upper()
            if item.get("platform") is not None:
                item["platform"] = item["platform"].lower()
        return payload


class OrderItemOut(BaseModel):
    product_id: str
    platform: str
    region: str
    denomination: MoneyOut
    quantity: int
    unit_price: MoneyOut
    total: MoneyOut


# What a reseller can tell its own customer, per order state (seed 003's list).
CUSTOMER_MESSAGES = {
    "processing": "Your order is being processed.",
    "delayed": "Your order is delayed while we restock. It will be delivered as soon as the "
    "codes arrive, and you will not be charged if it cannot be completed.",
    "manual_review": "Your order is being checked by our team before delivery. This usually "
    "takes less than one business day.",
    "delivered": "Your code is ready.",
    "failed": "We could not complete your order, and you have not been charged.",
    "region_mismatch": service.REGION_MISMATCH_MESSAGE,
}


def customer_message(order: Order) -> str:
    if order.status == OrderStatus.DELIVERED:
        return CUSTOMER_MESSAGES["delivered"]
    if order.status == OrderStatus.FAILED:
        return CUSTOMER_MESSAGES["failed"]
    if order.hold_reason == HoldReason.REVIEW:
        return CUSTOMER_MESSAGES["manual_review"]
    if order.hold_reason == HoldReason.STOCK:
        return CUSTOMER_MESSAGES["delayed"]
    return CUSTOMER_MESSAGES["processing"]


class OrderOut(BaseModel):
    id: str
    client_order_id: str | None
    status: str = Field(description=f"One of {', '.join(tuple(OrderStatus))}.")
    kind: str = Field(
        description="`purchase`, or `replacement`: free codes replacing claimed ones."
    )
    customer_message: str = Field(description="A sentence to show the end customer.")
    review_required: bool = Field(
        description="True while the order is held for the operator's review (status pending)."
    )
    waiting_for: Literal["review", "stock"] | None = Field(
        description="Why a pending order waits: the operator's review, or stock (a backorder)."
    )
    allow_backorder: bool
    backorder_until: datetime | None
    failure_reason: str | None = Field(
        description="Why a failed order failed: `backorder_expired`, `review_rejected`, "
        "`out_of_stock` (approved after review but no stock), `sandbox_forced_failure`."
    )
    items: list[OrderItemOut]
    total: MoneyOut
    created_at: datetime
    updated_at: datetime
    delivered_at: datetime | None
    codes_url: str

    @classmethod
    def of(cls, order: Order, products: dict[int, Product]) -> OrderOut:
        items = []
        for item in order.items:
            product = products[item.product_id]
            unit = Money(item.unit_price_minor, order.currency)
            items.append(
                OrderItemOut(
                    product_id=product.sku,
                    platform=product.platform,
                    region=product.region,
                    denomination=MoneyOut.of(face_value(product)),
                    quantity=item.quantity,
                    unit_price=MoneyOut.of(unit),
                    total=MoneyOut.of(Money(unit.minor * item.quantity, order.currency)),
                )
            )
        return cls(
            id=order.public_id,
            client_order_id=order.client_order_id,
            status=order.status,
            kind=order.kind,
            customer_message=customer_message(order),
            review_required=order.review_required,
            waiting_for=order.hold_reason,
            allow_backorder=order.allow_backorder,
            backorder_until=order.backorder_until,
            failure_reason=order.failure_reason,
            items=items,
            total=MoneyOut.of(Money(order.total_minor, order.currency)),
            created_at=order.created_at,
            updated_at=order.updated_at,
            delivered_at=order.delivered_at,
            codes_url=f"/api/v1/orders/{order.public_id}/codes",
        )


class OrderPage(Page):
    data: list[OrderOut]


class CodeOut(BaseModel):
    product_id: str
    code: str
    state: str = Field(
        description="`delivered`; `voided` once a claim replaced or refunded it (never resell "
        "it); `quarantined` while a claim on it is disputed upstream."
    )


class OrderCodes(BaseModel):
    order_id: str
    count: int
    codes: list[CodeOut]
