"""The webhooks a partner receives, for the OpenAPI document's ``webhooks`` section: one payload
schema per event type, as ``webhooks.service.emit_many`` writes it (``id``, ``event``,
``timestamp``, then the fields the emitting service gives), and the Standard Webhooks signing
headers. tests/contract validates real events of every type against these schemas.

The same body is in the events feed (``GET /events``: each event's ``payload``). Events sent by
``POST /sandbox/webhooks/trigger`` carry ``sample: true`` and only some of the fields.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema

from codeshelf.kit.schemas import MoneyOut
from codeshelf.webhooks.models import EVENT_TYPES


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="The event's id, also its `webhook-id`: deduplicate on it.")
    event: str
    timestamp: datetime
    sample: bool | None = Field(
        default=None, description="true on events sent by the sandbox's webhook trigger."
    )


class OrderEvent(_Event):
    """An order's lifecycle: created, paid, fulfilled (its codes are ready), failed, or held
    for the operator's review."""

    event: Literal[
        "order.created", "order.paid", "order.fulfilled", "order.failed", "order.review_required"
    ]
    order_id: str
    client_order_id: str | None
    status: Literal["pending", "paid", "delivered", "failed"]
    review_required: bool
    kind: str | None = Field(default=None, description="`order`, or `replacement` for a claim.")
    backorder_until: datetime | None = None
    failure_reason: str | None = None
    total: MoneyOut | None = None


class ClaimCode(BaseModel):
    model_config = ConfigDict(extra="forbid")

    position: int
    code: str = Field(description="Masked: the last four characters.")
    decision: str | None
    decision_rule: str | None


class ClaimEvent(_Event):
    """A claim changed status (triaged, approved, rejected, resolved, ...)."""

    event: Literal["claim.updated"]
    claim_id: str
    status: str
    order_id: str | None = None
    remedy: str | None = None
    customer_message: str | None = None
    codes: list[ClaimCode] | None = None


class BalanceLowEvent(_Event):
    """A debit or hold took a currency's balance below the alert the partner set."""

    event: Literal["balance.low"]
    balance: MoneyOut
    alert_below: MoneyOut | None = None


MODEL_BY_TYPE: dict[str, type[_Event]] = {
    **{event_type: OrderEvent for event_type in EVENT_TYPES if event_type.startswith("order.")},
    "claim.updated": ClaimEvent,
    "balance.low": BalanceLowEvent,
}

SIGNING_HEADERS = [
    ("webhook-id", "The event's id (the same on every retry): deduplicate on it."),
    ("webhook-timestamp", "Unix seconds when this attempt was signed: refuse stale ones."),
    (
        "webhook-signature",
        "`v1,<base64 HMAC-SHA256 of id.timestamp.body>`, space-separated: two during a "
        "secret rotation (Standard Webhooks).",
    ),
]


def webhooks(schemas: dict[str, Any]) -> dict[str, Any]:
    """The ``webhooks`` section; the payload schemas are added to ``schemas``."""
    _, found = models_json_schema(
        [(model, "serialization") for model in set(MODEL_BY_TYPE.values())],
        ref_template="#/components/schemas/{model}",
    )
    for name, schema in found.get("$defs", {}).items():
        schemas.setdefault(name, schema)
    return {event_type: _webhook(event_type, model) for event_type, model in MODEL_BY_TYPE.items()}


def _webhook(event_type: str, model: type[_Event]) -> dict[str, Any]:
    schema = {
        "allOf": [
            {"$ref": f"#/components/schemas/{model.__name__}"},
            {"properties": {"event": {"const": event_type}}},
        ]
    }
    return {
        "post": {
            "operationId": "on" + "".join(part.capitalize() for part in event_type.split(".")),
            "summary": f"`{event_type}`",
            "description": (model.__doc__ or "").strip()
            + "\n\nAnswer 2xx; anything else (or no answer) is retried with backoff, "
            "honouring `Retry-After`; 410 Gone disables the endpoint.",
            "parameters": [
                {
                    "name": name,
                    "in": "header",
                    "required": True,
                    "description": text,
                    "schema": {"type": "string"},
                }
                for name, text in SIGNING_HEADERS
            ],
            "requestBody": {"required": True, "content": {"application/json": {"schema": schema}}},
            "responses": {"2XX": {"description": "Received; it will not be sent again."}},
        }
    }
