"""Typed values for every answer of the partner API.

Pydantic models (frozen; fields the server adds later are ignored, so an older client keeps
working): money is a ``Decimal`` with its currency, never a float; times are timezone-aware."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Generic, Literal, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

T = TypeVar("T")


class Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class Money(Model):
    """An exact amount: ``Money(amount=Decimal("46.50"), currency="USD")``."""

    amount: Decimal
    currency: str

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"


class Page(Model, Generic[T]):
    """One page of a list; pass ``next_cursor`` back to get the next (None: the last page)."""

    data: list[T]
    next_cursor: str | None = None


class InventoryItem(Model):
    product_id: str
    platform: str
    region: str
    denomination: Money
    price: Money
    quantity_available: int
    available: bool


class Balance(Model):
    available: list[Money] = Field(alias="data")
    held: list[Money] = Field(default_factory=list)

    def in_currency(self, currency: str) -> Money:
        """The available balance in ``currency`` (zero when the wallet has none)."""
        for money in self.available:
            if money.currency == currency:
                return money
        return Money(amount=Decimal("0.00"), currency=currency)


class LedgerEntry(Model):
    id: str
    type: str
    amount: Money
    balance_after: Money
    order_id: str | None
    reference: str | None
    created_at: AwareDatetime


class OrderItem(Model):
    product_id: str
    platform: str
    region: str
    denomination: Money
    quantity: int
    unit_price: Money
    total: Money


class Order(Model):
    id: str
    client_order_id: str | None
    status: str
    kind: str
    customer_message: str
    review_required: bool
    waiting_for: Literal["review", "stock"] | None
    allow_backorder: bool
    backorder_until: AwareDatetime | None
    failure_reason: str | None
    items: list[OrderItem]
    total: Money
    created_at: AwareDatetime
    updated_at: AwareDatetime
    delivered_at: AwareDatetime | None
    codes_url: str
    # Set by the client, not sent by the server: the key the order was placed with (store it
    # with the order id), and whether this answer replays the first one (a retry).
    idempotency_key: str | None = None
    replayed: bool = False


class DeliveredCode(Model):
    product_id: str
    code: str
    state: str


class OrderCodes(Model):
    order_id: str
    count: int
    codes: list[DeliveredCode]


class Redemption(Model):
    account_region: str | None = None
    attempted_at: AwareDatetime | None = None
    exposed_publicly: bool = False


class Remedy(Model):
    kind: str
    state: str
    refunded: Money | None = None
    replacement_order_id: str | None = None


class CodeVerdict(Model):
    position: int
    code: str
    problem: str
    classification: str
    verdict: str
    rule: str | None
    rule_text: str | None
    missing: list[str]
    code_region: str | None
    error_code: str | None
    decision: str | None = None
    decision_rule: str | None = None
    decision_rule_text: str | None = None
    decided_at: AwareDatetime | None = None
    remedy: Remedy | None = None


class ClaimSla(Model):
    triage_due_at: AwareDatetime
    remedy_due_at: AwareDatetime | None
    upstream_due_at: AwareDatetime | None
    due_at: AwareDatetime | None
    overdue: bool


class Evidence(Model):
    id: str
    media_type: str
    size_bytes: int
    sha256: str
    uploaded_at: AwareDatetime


class Claim(Model):
    id: str
    order_id: str
    status: str
    channel: str
    policy_version: str
    problem: str
    remedy: str
    codes: list[CodeVerdict]
    error_code: str | None
    redemption: Redemption
    evidence: list[Evidence]
    sla: ClaimSla
    info_request: str | None
    decision_rule: str | None
    replacement_order_ids: list[str]
    customer_message: str
    submitted_at: AwareDatetime
    updated_at: AwareDatetime


class PreviewCode(Model):
    code: str
    problem: str
    classification: str
    verdict: str
    rule: str | None
    rule_text: str | None
    missing: list[str]


class ClaimPreview(Model):
    """What filing would conclude (``claims.preview``), without filing."""

    dry_run: bool = True
    order_id: str
    policy_version: str
    codes: list[PreviewCode]
    would_be_filed: bool = True
    refusal: str | None = None
    refusal_detail: str | None = None


class Event(Model):
    """One state change; ``payload`` is exactly the body its webhook carries."""

    id: str
    type: str
    created_at: AwareDatetime
    payload: dict[str, Any]

    @property
    def order_id(self) -> str | None:
        found = self.payload.get("order_id")
        return found if isinstance(found, str) else None


class WebhookEndpoint(Model):
    id: str
    url: str
    event_types: list[str]
    status: str
    disabled_reason: str | None
    created_at: AwareDatetime
    secret: str | None = Field(default=None, description="Only in the answer that creates it.")


class DeliveryAttempt(Model):
    event_id: str
    event_type: str
    attempt: int
    started_at: AwareDatetime
    status_code: int | None
    latency_ms: int
    response_excerpt: str | None
    error: str | None
    delivery_state: str


class CurrencyFigures(Model):
    currency: str
    opening: Money
    deposits: Money
    order_debits: Money
    holds: Money
    releases: Money
    refunds: Money
    closing: Money
    held_opening: Money
    captured: Money
    held_closing: Money


class ReconciledOrder(Model):
    order_id: str
    client_order_id: str | None
    status: str
    amount: Money
    created_at: AwareDatetime


@dataclass(frozen=True)
class Difference:
    """An order on which the supplier's day and the reseller's own records disagree.

    ``kind``: ``missing_here`` (the supplier has it, your records do not), ``missing_there``
    (yours has it, the supplier's day does not), or ``amount`` (both, different money)."""

    order_id: str
    kind: Literal["missing_here", "missing_there", "amount"]
    theirs: Money | None
    ours: Money | None


class Reconciliation(Model):
    date: dt.date
    timezone: str = "UTC"
    currencies: list[CurrencyFigures]
    orders: list[ReconciledOrder]

    def compare(self, ours: dict[str, Money]) -> list[Difference]:
        """The orders where this day differs from ``ours`` (order id -> what you recorded it
        cost), by order id and currency; an empty list when the books agree."""
        theirs = {line.order_id: line.amount for line in self.orders}
        differences = []
        for order_id in sorted(theirs.keys() | ours.keys()):
            mine, supplier = ours.get(order_id), theirs.get(order_id)
            if mine is None:
                differences.append(Difference(order_id, "missing_here", supplier, None))
            elif supplier is None:
                differences.append(Difference(order_id, "missing_there", None, mine))
            elif (mine.amount, mine.currency) != (supplier.amount, supplier.currency):
                differences.append(Difference(order_id, "amount", supplier, mine))
        return differences


class TopUp(Model):
    transaction_id: str
    balance: Money


class Restocked(Model):
    delivered_order_ids: list[str]


class Triggered(Model):
    event_id: str
