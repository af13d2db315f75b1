"""The worker's side: pick due deliveries, sign and send them, schedule retries.

A delivery is held by one worker at a time (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite
writers take turns) for ``LOCK`` while it is sent. A worker killed mid-send simply lets the hold
expire and the delivery is sent again: receivers deduplicate on ``webhook-id``.
"""

from __future__ import annotations

import json
import logging
import random
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

import httpx
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from codeshelf.kit.clock import utcnow
from codeshelf.kit.db import Database
from codeshelf.kit.vault import Vault
from codeshelf.webhooks import service, signing, urls
from codeshelf.webhooks.models import (
    Delivery,
    DeliveryAttempt,
    DeliveryState,
    EndpointStatus,
    Event,
    WebhookEndpoint,
)

log = logging.getLogger("codeshelf.worker")

# After the first attempt: the Standard Webhooks example schedule (about three days in all).
RETRY_DELAYS = [
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=14),
    timedelta(hours=20),
    timedelta(hours=24),
]
JITTER = 0.1  # each delay is stretched or shrunk by up to 10 %
LOCK = timedelta(seconds=60)  # longer than the request time-out
TIMEOUT = 15.0
MAX_RETRY_AFTER = timedelta(hours=24)
EXCERPT = 500
PARALLEL_ENDPOINTS = 8  # endpoints a worker sends to at once


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    error: str | None
    excerpt: str | None
    latency_ms: int
    retry_after: timedelta | None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def next_delay(attempts: int, retry_after: timedelta | None) -> timedelta | None:
    """When to try again after ``attempts`` failed attempts; None once the schedule is spent."""
    if attempts > len(RETRY_DELAYS):
        return None
    delay = RETRY_DELAYS[attempts - 1] * (1 + random.uniform(-JITTER, JITTER))  # noqa: S311
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_RETRY_AFTER))
    return delay


def claim_due(db: Database, now: datetime, limit: int) -> list[tuple[int, str]]:
    """Hold up to ``limit`` due deliveries for this worker; returns (id, lock token) pairs."""
    token = secrets.token_hex(16)
    with db.session() as session:
        query = (
            select(Delivery.id)
            .join(WebhookEndpoint, WebhookEndpoint.id == Delivery.endpoint_id)
            .where(
                WebhookEndpoint.status == EndpointStatus.ACTIVE,
                WebhookEndpoint.deleted_at.is_(None),
                Delivery.state == DeliveryState.PENDING,
                Delivery.next_attempt_at <= now,
                or_(Delivery.locked_until.is_(None), Delivery.locked_until < now),
            )
            .order_by(Delivery.next_attempt_at, Delivery.id)
            .limit(limit)
            .with_for_update(of=Delivery, skip_locked=True)
        )
        ids = list(session.scalars(query))
        if ids:
            session.execute(
                update(Delivery)
                .where(Delivery.id.in_(ids))
                .values(locked_until=now + LOCK, lock_token=token)
            )
    return [(delivery_id, token) for delivery_id in ids]


@dataclass(frozen=True)
class Message:
    url: str
    body: bytes
    headers: dict[str, str]


def _message(session: Session, vault: Vault, delivery: Delivery, now: datetime) -> Message:
    event = session.get_one(Event, delivery.event_id)
    endpoint = session.get_one(WebhookEndpoint, delivery.endpoint_id)
    body = json.dumps(event.payload, separators=(",", ":")).encode()
    secrets_ = service.signing_secrets(vault, endpoint, now)
    headers = signing.headers(secrets_, event.public_id, int(now.timestamp()), body)
    return Message(endpoint.url, body, headers)


def _retry_after(response: httpx.Response, now: datetime) -> timedelta | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    if value.strip().isdigit():
        return timedelta(seconds=int(value.strip()))
    try:
        return max(parsedate_to_datetime(value) - now, timedelta(0))
    except (TypeError, ValueError):
        return None


def send(client: httpx.Client, message: Message, now: datetime, allow_private: bool) -> Outcome:
    started = time.monotonic()

    def elapsed() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        urls.check(message.url, allow_private=allow_private)
        response = client.post(message.url, content=message.body, headers=message.headers)
    except urls.UnsafeUrlError as exc:
        return Outcome(None, f"refused: {exc.detail}", None, elapsed(), None)
    except httpx.TimeoutException:
        return Outcome(None, "timed out", None, elapsed(), None)
    except httpx.HTTPError as exc:
        return Outcome(None, f"{type(exc).__name__}: {exc}"[:300], None, elapsed(), None)
    return Outcome(
        response.status_code,
        None,
        response.text[:EXCERPT] if response.content else None,
        elapsed(),
        _retry_after(response, now),
    )


def attempt(
    db: Database,
    vault: Vault,
    client: httpx.Client,
    delivery_id: int,
    token: str,
    *,
    allow_private: bool,
    now: datetime | None = None,
) -> Outcome | None:
    """Send one held delivery and record the result. None if the hold was lost meanwhile."""
    now = now or utcnow()
    with db.session() as session:
        # Renew the hold just before sending: a batch's later deliveries may have waited behind
        # slow receivers past their first hold, and another worker may have taken them over.
        renewed = session.execute(
            update(Delivery)
            .where(
                Delivery.id == delivery_id,
                Delivery.lock_token == token,
                Delivery.state == DeliveryState.PENDING,
            )
            .values(locked_until=now + LOCK)
        )
        if renewed.rowcount != 1:  # type: ignore[attr-defined]
            return None
        delivery = session.get_one(Delivery, delivery_id)
        message = _message(session, vault, delivery, now)
    outcome = send(client, message, now, allow_private)
    with db.session() as session:
        delivery = session.get_one(Delivery, delivery_id, with_for_update=True)
        if delivery.lock_token != token or delivery.state != DeliveryState.PENDING:
            return None  # another worker took it over after our hold expired: its result counts
        delivery.attempts += 1
        session.add(
            DeliveryAttempt(
                delivery_id=delivery.id,
                number=delivery.attempts,
                started_at=now,
                status_code=outcome.status_code,
                latency_ms=outcome.latency_ms,
                response_excerpt=outcome.excerpt,
                error=outcome.error,
            )
        )
        _settle(session, delivery, outcome, now)
    return outcome


def _settle(session: Session, delivery: Delivery, outcome: Outcome, now: datetime) -> None:
    delivery.locked_until = None
    delivery.lock_token = None
    if outcome.delivered:
        delivery.state = DeliveryState.SUCCEEDED
        delivery.completed_at = now
        return
    delay = (
        None if outcome.status_code == 410 else next_delay(delivery.attempts, outcome.retry_after)
    )
    if delay is not None:
        delivery.next_attempt_at = now + delay
        return
    delivery.state = DeliveryState.FAILED
    delivery.completed_at = now
    endpoint = session.get_one(WebhookEndpoint, delivery.endpoint_id)
    if endpoint.status != EndpointStatus.DISABLED:
        endpoint.status = EndpointStatus.DISABLED
        endpoint.disabled_reason = (
            "the receiver answered 410 Gone"
            if outcome.status_code == 410
            else f"every attempt failed for {delivery.attempts} tries over about three days "
            f"(last: {outcome.error or outcome.status_code})"
        )
        log.warning(
            "disabled webhook endpoint %s: %s", endpoint.public_id, endpoint.disabled_reason
        )
        # Nothing more goes to it: its queue fails with it (replay once it is enabled again).
        session.execute(
            update(Delivery)
            .where(Delivery.endpoint_id == endpoint.id, Delivery.state == DeliveryState.PENDING)
            .values(
                state=DeliveryState.FAILED, completed_at=now, locked_until=None, lock_token=None
            )
        )


def run_once(
    db: Database,
    vault: Vault,
    client: httpx.Client,
    *,
    allow_private: bool,
    batch: int = 50,
    now: datetime | None = None,
) -> int:
    """Send every delivery due now (up to ``batch``); returns how many were attempted.

    Each endpoint's deliveries go one after another (a 410 stops the rest of its queue), and
    endpoints in parallel, so one slow receiver delays only its own webhooks.
    """
    held = claim_due(db, now or utcnow(), batch)
    if not held:
        return 0
    queues = _by_endpoint(db, held)

    def send_queue(queue: list[tuple[int, str]]) -> None:
        for delivery_id, token in queue:
            attempt(db, vault, client, delivery_id, token, allow_private=allow_private, now=now)

    if len(queues) == 1:
        send_queue(queues[0])
    else:
        with ThreadPoolExecutor(max_workers=min(PARALLEL_ENDPOINTS, len(queues))) as pool:
            for finished in [pool.submit(send_queue, queue) for queue in queues]:
                finished.result()
    return len(held)


def _by_endpoint(db: Database, held: list[tuple[int, str]]) -> list[list[tuple[int, str]]]:
    with db.read_session() as session:
        endpoint_of = dict(
            session.execute(
                select(Delivery.id, Delivery.endpoint_id).where(
                    Delivery.id.in_([delivery_id for delivery_id, _ in held])
                )
            ).all()
        )
    queues: dict[int, list[tuple[int, str]]] = {}
    for delivery_id, token in held:  # claim order: oldest due first within each endpoint
        queues.setdefault(endpoint_of[delivery_id], []).append((delivery_id, token))
    return list(queues.values())
