from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from codeshelf.kit.schemas import PRINTABLE, Page
from codeshelf.webhooks.models import EVENT_TYPES, DeliveryAttempt, Event, WebhookEndpoint

EventType = Literal[
    "order.created",
    "order.paid",
    "order.fulfilled",
    "order.failed",
    "order.review_required",
    "claim.updated",
    "balance.low",
]


class EndpointCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=8, max_length=2048, pattern=PRINTABLE)
    event_types: list[EventType] = Field(
        default_factory=list, max_length=len(EVENT_TYPES), description="Empty: every event."
    )


class EndpointOut(BaseModel):
    id: str
    url: str
    event_types: list[str]
    status: str = Field(description="`active`, or `disabled` (see `disabled_reason`).")
    disabled_reason: str | None
    created_at: datetime
    secret: str | None = Field(
        default=None, description="The signing secret: only in the answer that creates it."
    )

    @classmethod
    def of(cls, endpoint: WebhookEndpoint, secret: str | None = None) -> EndpointOut:
        return cls(
            id=endpoint.public_id,
            url=endpoint.url,
            event_types=endpoint.event_types,
            status=endpoint.status,
            disabled_reason=endpoint.disabled_reason,
            created_at=endpoint.created_at,
            secret=secret,
        )


class EndpointList(BaseModel):
    data: list[EndpointOut]


class EventOut(BaseModel):
    id: str
    type: str
    created_at: datetime
    payload: dict[str, Any] = Field(description="Exactly the body the webhook carries.")

    @classmethod
    def of(cls, event: Event) -> EventOut:
        return cls(
            id=event.public_id, type=event.type, created_at=event.created_at, payload=event.payload
        )


class EventPage(Page):
    data: list[EventOut]


class AttemptOut(BaseModel):
    event_id: str
    event_type: str
    attempt: int
    started_at: datetime
    status_code: int | None
    latency_ms: int
    response_excerpt: str | None
    error: str | None
    delivery_state: str

    @classmethod
    def of(cls, attempt: DeliveryAttempt, state: str, event: Event) -> AttemptOut:
        return cls(
            event_id=event.public_id,
            event_type=event.type,
            attempt=attempt.number,
            started_at=attempt.started_at,
            status_code=attempt.status_code,
            latency_ms=attempt.latency_ms,
            response_excerpt=attempt.response_excerpt,
            error=attempt.error,
            delivery_state=state,
        )


class AttemptList(BaseModel):
    data: list[AttemptOut]
