"""Webhook endpoints, the event outbox and the events feed.

``emit`` is called by other domains inside their own transaction: the event and one delivery
per subscribed endpoint commit with the change they report, or not at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, bindparam, case, delete, func, insert, select, update
from sqlalchemy.orm import Session

from codeshelf.audit import service as audit
from codeshelf.kit.clock import utcnow
from codeshelf.kit.db import table_of
from codeshelf.kit.errors import InvalidCursorError, InvalidInputError, NotFoundError
from codeshelf.kit.ids import is_public_id, public_id
from codeshelf.kit.vault import Vault
from codeshelf.partners.models import Partner
from codeshelf.webhooks import signing, urls
from codeshelf.webhooks.models import (
    ENDPOINT_PREFIX,
    EVENT_PREFIX,
    Delivery,
    DeliveryAttempt,
    DeliveryState,
    EndpointStatus,
    Event,
    WebhookEndpoint,
)
from codeshelf.webhooks.models import (
    EVENT_TYPES as EVENT_TYPES,
)

MAX_ENDPOINTS = 10  # per partner
ROTATION_OVERLAP = timedelta(hours=24)


class EndpointNotFoundError(NotFoundError):
    slug = "webhook-endpoint-not-found"


class EventNotFoundError(NotFoundError):
    slug = "event-not-found"


def _secret_aad(endpoint_public_id: str) -> bytes:
    return f"webhook secret {endpoint_public_id}".encode()


def create_endpoint(
    session: Session,
    vault: Vault,
    partner: Partner,
    url: str,
    event_types: Sequence[str],
    *,
    allow_private: bool,
    actor: str | None = None,
) -> tuple[WebhookEndpoint, str]:
    """Register an endpoint; returns it and its signing secret (shown once)."""
    urls.check(url, allow_private=allow_private)
    types = _event_types(event_types)
    # The partner's row is the lock: two creates at once count one after the other, so the
    # cap holds under parallel requests (without it, 17 of 25 got through on PostgreSQL).
    session.execute(select(Partner.id).where(Partner.id == partner.id).with_for_update())
    active = session.scalars(
        select(WebhookEndpoint.id).where(
            WebhookEndpoint.partner_id == partner.id, WebhookEndpoint.deleted_at.is_(None)
        )
    ).all()
    if len(active) >= MAX_ENDPOINTS:
        raise InvalidInputError(f"a partner has at most {MAX_ENDPOINTS} webhook endpoints")
    secret = signing.new_secret()
    endpoint_id = public_id(ENDPOINT_PREFIX)
    endpoint = WebhookEndpoint(
        public_id=endpoint_id,
        partner_id=partner.id,
        url=url,
        event_types=types,
        secret_sealed=vault.seal_bytes(secret.encode(), _secret_aad(endpoint_id)),
        secret_key_id=vault.key_id,
        status=EndpointStatus.ACTIVE,
    )
    session.add(endpoint)
    session.flush()
    _record(
        session,
        partner,
        "webhook_endpoint.create",
        endpoint_id,
        actor,
        {"url": url, "event_types": types},
    )
    return endpoint, secret


def _event_types(event_types: Sequence[str]) -> list[str]:
    unknown = sorted(set(event_types) - set(EVENT_TYPES))
    if unknown:
        raise InvalidInputError(
            f"unknown event type(s) {', '.join(unknown)}; known: {', '.join(EVENT_TYPES)}",
            pointer="#/event_types",
        )
    return sorted(set(event_types)) or list(EVENT_TYPES)


def get_endpoint(session: Session, partner_id: int, endpoint_public_id: str) -> WebhookEndpoint:
    if not is_public_id(ENDPOINT_PREFIX, endpoint_public_id):
        raise EndpointNotFoundError(f"no webhook endpoint {endpoint_public_id!r}")
    endpoint = session.scalar(
        select(WebhookEndpoint).where(
            WebhookEndpoint.public_id == endpoint_public_id,
            WebhookEndpoint.partner_id == partner_id,
            WebhookEndpoint.deleted_at.is_(None),
        )
    )
    if endpoint is None:
        raise EndpointNotFoundError(f"no webhook endpoint {endpoint_public_id}")
    return endpoint


def find_endpoint(session: Session, endpoint_public_id: str) -> WebhookEndpoint:
    """Any partner's endpoint, deleted ones too (the operator reading a delivery log)."""
    endpoint = None
    if is_public_id(ENDPOINT_PREFIX, endpoint_public_id):
        endpoint = session.scalar(
            select(WebhookEndpoint).where(WebhookEndpoint.public_id == endpoint_public_id)
        )
    if endpoint is None:
        raise EndpointNotFoundError(f"no webhook endpoint {endpoint_public_id}")
    return endpoint


def list_endpoints(session: Session, partner_id: int) -> list[WebhookEndpoint]:
    return list(
        session.scalars(
            select(WebhookEndpoint)
            .where(WebhookEndpoint.partner_id == partner_id, WebhookEndpoint.deleted_at.is_(None))
            .order_by(WebhookEndpoint.id)
        )
    )


def delete_endpoint(
    session: Session, partner: Partner, endpoint_public_id: str, actor: str | None = None
) -> None:
    """Stop sending to it; what it already received stays in the delivery log."""
    endpoint = get_endpoint(session, partner.id, endpoint_public_id)
    now = utcnow()
    endpoint.deleted_at = now
    for delivery in session.scalars(
        select(Delivery).where(
            Delivery.endpoint_id == endpoint.id, Delivery.state == DeliveryState.PENDING
        )
    ):
        delivery.state = "failed"
        delivery.completed_at = now
    _record(session, partner, "webhook_endpoint.delete", endpoint.public_id, actor)


def rotate_secret(
    session: Session,
    vault: Vault,
    partner: Partner,
    endpoint_public_id: str,
    actor: str | None = None,
) -> tuple[WebhookEndpoint, str]:
    """A new secret (shown once); the old one keeps signing for 24 hours beside it."""
    endpoint = get_endpoint(session, partner.id, endpoint_public_id)
    secret = signing.new_secret()
    endpoint.previous_secret_sealed = endpoint.secret_sealed
    endpoint.previous_secret_key_id = endpoint.secret_key_id
    endpoint.previous_secret_expires_at = utcnow() + ROTATION_OVERLAP
    endpoint.secret_sealed = vault.seal_bytes(secret.encode(), _secret_aad(endpoint.public_id))
    endpoint.secret_key_id = vault.key_id
    _record(session, partner, "webhook_endpoint.rotate_secret", endpoint.public_id, actor)
    return endpoint, secret


def enable_endpoint(
    session: Session, partner: Partner, endpoint_public_id: str, actor: str | None = None
) -> WebhookEndpoint:
    """Send to a disabled endpoint again (new events; replay the ones it missed)."""
    return _set_status(session, partner, endpoint_public_id, EndpointStatus.ACTIVE, None, actor)


def disable_endpoint(
    session: Session, partner: Partner, endpoint_public_id: str, actor: str | None = None
) -> WebhookEndpoint:
    """Stop sending to an endpoint for now (events keep being recorded: replay them later)."""
    reason = "disabled by the partner"
    return _set_status(session, partner, endpoint_public_id, EndpointStatus.DISABLED, reason, actor)


def _set_status(
    session: Session,
    partner: Partner,
    endpoint_public_id: str,
    status: str,
    reason: str | None,
    actor: str | None,
) -> WebhookEndpoint:
    endpoint = get_endpoint(session, partner.id, endpoint_public_id)
    endpoint.status = status
    endpoint.disabled_reason = reason
    action = "enable" if status == EndpointStatus.ACTIVE else "disable"
    _record(session, partner, f"webhook_endpoint.{action}", endpoint.public_id, actor)
    return endpoint


def _record(
    session: Session,
    partner: Partner,
    action: str,
    endpoint_public_id: str,
    actor: str | None,
    details: dict[str, Any] | None = None,
) -> None:
    """The audit entry of a partner's change to one of its endpoints."""
    audit.record(
        session,
        actor=actor or f"partner:{partner.public_id}",
        action=action,
        partner_public_id=partner.public_id,
        subject=endpoint_public_id,
        details=details,
    )


def signing_secrets(vault: Vault, endpoint: WebhookEndpoint, now: datetime) -> list[str]:
    """The secrets to sign with now: the current one, and the previous during its overlap."""
    aad = _secret_aad(endpoint.public_id)
    found = [vault.open_bytes(endpoint.secret_sealed, aad, endpoint.secret_key_id).decode()]
    if (
        endpoint.previous_secret_sealed is not None
        and endpoint.previous_secret_key_id is not None
        and endpoint.previous_secret_expires_at is not None
        and endpoint.previous_secret_expires_at > now
    ):
        found.append(
            vault.open_bytes(
                endpoint.previous_secret_sealed, aad, endpoint.previous_secret_key_id
            ).decode()
        )
    return found


def emit(session: Session, partner_id: int, event_type: str, fields: dict[str, Any]) -> str:
    """Record an event in the caller's transaction and queue it for every subscribed endpoint.

    Returns the event's id.
    """
    return emit_many(session, partner_id, [(event_type, fields)])[0]


# Built once: an order writes its events on the hot path.
_INSERT_EVENTS = insert(table_of(Event)).returning(
    table_of(Event).c.id, sort_by_parameter_order=True
)
_INSERT_DELIVERIES = insert(table_of(Delivery))
_SUBSCRIBERS = select(
    WebhookEndpoint.id, WebhookEndpoint.public_id, WebhookEndpoint.event_types
).where(
    WebhookEndpoint.partner_id == bindparam("partner_id"),
    WebhookEndpoint.status == EndpointStatus.ACTIVE,
    WebhookEndpoint.deleted_at.is_(None),
)


def emit_many(
    session: Session, partner_id: int, events: list[tuple[str, dict[str, Any]]]
) -> list[str]:
    """Several events at once (in order): one insert for them, one for their deliveries."""
    now = utcnow()
    rows: list[dict[str, Any]] = []
    for event_type, fields in events:
        assert event_type in EVENT_TYPES, event_type
        event_id = public_id(EVENT_PREFIX)
        payload = {"id": event_id, "event": event_type, "timestamp": now.isoformat(), **fields}
        rows.append(
            {
                "public_id": event_id,
                "partner_id": partner_id,
                "type": event_type,
                "payload": payload,
                "created_at": now,
            }
        )
    ids = list(session.scalars(_INSERT_EVENTS, rows))
    _queue(session, partner_id, [(pk, row["type"]) for pk, row in zip(ids, rows, strict=True)], now)
    return [str(row["public_id"]) for row in rows]


def _queue(
    session: Session, partner_id: int, events: list[tuple[int, str]], now: datetime
) -> list[str]:
    """A delivery, due now, of each event to each live endpoint subscribed to its type.

    Returns the public ids of the endpoints that got at least one.
    """
    subscribers = session.execute(_SUBSCRIBERS, {"partner_id": partner_id}).all()
    deliveries = []
    reached = set()
    for event_pk, event_type in events:
        for endpoint_id, endpoint_public_id, types in subscribers:
            if event_type in types:
                reached.add(endpoint_public_id)
                deliveries.append(
                    {
                        "event_id": event_pk,
                        "endpoint_id": endpoint_id,
                        "state": DeliveryState.PENDING,
                        "attempts": 0,
                        "next_attempt_at": now,
                        "created_at": now,
                    }
                )
    if deliveries:
        session.execute(_INSERT_DELIVERIES, deliveries)
    return sorted(reached)


def list_events(
    session: Session, partner_id: int, *, after: str | None, limit: int, types: list[str] | None
) -> list[Event]:
    """The partner's events, oldest first, after the cursor (the last event id seen)."""
    query = select(Event).where(Event.partner_id == partner_id).order_by(Event.id)
    if after is not None:
        if not is_public_id(EVENT_PREFIX, after):
            raise InvalidCursorError()
        position = session.scalar(
            select(Event.id).where(Event.public_id == after, Event.partner_id == partner_id)
        )
        if position is None:
            raise InvalidCursorError()
        query = query.where(Event.id > position)
    if types:
        query = query.where(Event.type.in_(types))
    return list(session.scalars(query.limit(limit)))


def get_event(session: Session, event_public_id: str, partner_id: int | None = None) -> Event:
    if not is_public_id(EVENT_PREFIX, event_public_id):
        raise EventNotFoundError(f"no event {event_public_id!r}")
    query = select(Event).where(Event.public_id == event_public_id)
    if partner_id is not None:
        query = query.where(Event.partner_id == partner_id)
    event = session.scalar(query)
    if event is None:
        raise EventNotFoundError(f"no event {event_public_id}")
    return event


def replay(
    session: Session,
    event_public_id: str,
    partner_id: int | None = None,
    actor: str = audit.OPERATOR_CLI,
) -> list[str]:
    """Queue the event again, now, to every live endpoint subscribed to it (same webhook-id,
    so receivers that already have it can drop it). Returns the endpoint ids."""
    event = get_event(session, event_public_id, partner_id)
    endpoints = _queue(session, event.partner_id, [(event.id, event.type)], utcnow())
    audit.record(session, actor=actor, action="webhook.replay", subject=event.public_id)
    return endpoints


def retry_failed(session: Session, endpoint: WebhookEndpoint, actor: str) -> int:
    """Send every delivery this endpoint gave up on once more, now (after the receiver is
    fixed and the endpoint enabled); how many. Each keeps its webhook-id."""
    now = utcnow()
    retried = session.execute(
        update(Delivery)
        .where(Delivery.endpoint_id == endpoint.id, Delivery.state == DeliveryState.FAILED)
        .values(state=DeliveryState.PENDING, next_attempt_at=now, completed_at=None)
    )
    count = int(retried.rowcount)  # type: ignore[attr-defined]
    partner = session.get(Partner, endpoint.partner_id)
    audit.record(
        session, actor=actor, action="webhook.retry_failed", subject=endpoint.public_id,
        partner_public_id=partner.public_id if partner else None, count=count,
    )  # fmt: skip
    return count


def delivery_log(
    session: Session, endpoint: WebhookEndpoint, limit: int = 100
) -> list[tuple[DeliveryAttempt, Delivery, Event]]:
    """The latest attempts to one endpoint, newest first."""
    rows = session.execute(
        select(DeliveryAttempt, Delivery, Event)
        .join(Delivery, Delivery.id == DeliveryAttempt.delivery_id)
        .join(Event, Event.id == Delivery.event_id)
        .where(Delivery.endpoint_id == endpoint.id)
        .order_by(DeliveryAttempt.id.desc())
        .limit(limit)
    ).all()
    return [(attempt, delivery, event) for attempt, delivery, event in rows]


def purge_before(session: Session, cutoff: datetime) -> int:
    """Delete events created before ``cutoff`` whose deliveries are all settled, with their
    deliveries and attempts; returns how many events went. Pending deliveries keep theirs."""
    unsettled = select(Delivery.event_id).where(Delivery.state == DeliveryState.PENDING)
    old = select(Event.id).where(Event.created_at < cutoff, Event.id.not_in(unsettled))
    old_deliveries = select(Delivery.id).where(Delivery.event_id.in_(old))
    session.execute(delete(DeliveryAttempt).where(DeliveryAttempt.delivery_id.in_(old_deliveries)))
    session.execute(delete(Delivery).where(Delivery.event_id.in_(old)))
    result = session.execute(delete(Event).where(Event.id.in_(old)))
    return int(result.rowcount)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class EndpointHealth:
    """An endpoint as the operator watches it: how its recent attempts went."""

    endpoint: WebhookEndpoint
    attempts: int  # over the window
    succeeded: int
    last_failure_at: datetime | None
    last_failure: str | None  # the status code or the stored error of the latest failure

    @property
    def success_rate(self) -> float | None:
        return self.succeeded / self.attempts if self.attempts else None


def endpoint_health(
    session: Session, since: datetime, *, disabled_only: bool = False
) -> list[EndpointHealth]:
    """Every partner's live endpoints (disabled ones first), with their attempts since
    ``since``: how many, how many answered 2xx, and the latest failure."""
    query = select(WebhookEndpoint).where(WebhookEndpoint.deleted_at.is_(None))
    if disabled_only:
        query = query.where(WebhookEndpoint.status == EndpointStatus.DISABLED)
    endpoints = list(
        session.scalars(query.order_by(WebhookEndpoint.status.desc(), WebhookEndpoint.id))
    )
    ok = (DeliveryAttempt.status_code >= 200) & (DeliveryAttempt.status_code < 300)
    counts = {
        endpoint_id: (int(total), int(good or 0))
        for endpoint_id, total, good in session.execute(
            select(Delivery.endpoint_id, func.count(), func.sum(case((ok, 1), else_=0)))
            .join(Delivery, Delivery.id == DeliveryAttempt.delivery_id)
            .where(DeliveryAttempt.started_at >= since)
            .group_by(Delivery.endpoint_id)
        )
    }
    return [
        _health(session, endpoint, counts.get(endpoint.id, (0, 0)), ok) for endpoint in endpoints
    ]


def _health(
    session: Session, endpoint: WebhookEndpoint, counts: tuple[int, int], ok: ColumnElement[bool]
) -> EndpointHealth:
    failure = session.execute(
        select(DeliveryAttempt.started_at, DeliveryAttempt.status_code, DeliveryAttempt.error)
        .join(Delivery, Delivery.id == DeliveryAttempt.delivery_id)
        .where(Delivery.endpoint_id == endpoint.id, ~ok | DeliveryAttempt.status_code.is_(None))
        .order_by(DeliveryAttempt.id.desc())
        .limit(1)
    ).first()
    at, code, error = failure if failure is not None else (None, None, None)
    described = f"HTTP {code}" if code is not None else error
    return EndpointHealth(endpoint, counts[0], counts[1], at, described)


@dataclass(frozen=True)
class Backlog:
    """Deliveries not yet made: how many, and how long the oldest has waited (seconds)."""

    pending: int
    oldest_age_seconds: float


def backlog(session: Session, now: datetime) -> Backlog:
    """The outbox's undelivered deliveries (pending: due or waiting for a retry), for the
    metrics scrape: one statement over the partial index of pending deliveries."""
    count, oldest = session.execute(
        select(func.count(), func.min(Delivery.created_at)).where(
            Delivery.state == DeliveryState.PENDING
        )
    ).one()
    age = 0.0 if oldest is None else max(0.0, (now - oldest).total_seconds())
    return Backlog(int(count or 0), age)
