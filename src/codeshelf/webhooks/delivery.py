"""The worker's side: claim due deliveries in batches, sign and send them, record the results.

A delivery is held by one worker at a time: a lease of ``LOCK`` (``locked_until`` and the
claim's ``lock_token``). One statement claims a batch, oldest due first (``UPDATE … RETURNING``
over a pick ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, where the same statement also returns the
events and endpoints, in autocommit: one round trip; SQLite writers take turns, and a second
query loads them). Each endpoint's deliveries are then sent one after another (``send_queue``;
endpoints side by side: in the loop each in a lane of its own, ``webhooks.lanes``, with
``--once`` up to 8 at once), each attempt under one deadline and only to vetted addresses
(``client()``, ``webhooks.transport``), and each endpoint's results are recorded together in
one transaction: one statement
for the successes and one for the failures, each checking that the holds are still this
worker's (a result sent under a hold lost meanwhile is dropped: the worker that took the
delivery over records its own), then one insert for the delivery log. A 410, or a schedule run
out, ends the endpoint's queue: it is disabled and nothing more is sent to it.

A queue that sends for longer than ``CHECKPOINT`` records what it has sent so far and renews the
holds of the rest (again checking they are still its own and still pending: an endpoint deleted
meanwhile is sent nothing more), so every send starts on a hold with nearly ``LOCK`` left and no
second worker takes a delivery over while it is being sent. A worker killed between claim and
record simply lets its holds expire, and the deliveries are sent again: receivers deduplicate on
``webhook-id``.
"""

from __future__ import annotations

import json
import logging
import random
import secrets
import ssl
import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from sqlalchemy import RowMapping, Select, bindparam, func, insert, or_, select, update
from sqlalchemy.orm import Session

from codeshelf.kit.clock import utcnow
from codeshelf.kit.db import Database, UTCDateTime, table_of
from codeshelf.kit.logs import event
from codeshelf.kit.vault import Vault
from codeshelf.webhooks import service, signing, transport, urls
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
LOCK = timedelta(seconds=60)  # longer than an attempt's deadline
TIMEOUT = 15.0  # seconds an attempt may take in all: connecting, sending, the answer's head
MAX_RETRY_AFTER = timedelta(hours=24)
EXCERPT = 500  # characters of an answer kept in the delivery log
EXCERPT_BYTES = 2048  # bytes of an answer read at most
PARALLEL_ENDPOINTS = 8  # endpoints a worker sends to at once
CHECKPOINT = 1.0  # seconds a queue sends before recording its results and renewing its holds
# PostgreSQL NOTIFYs this channel when a transaction that queued deliveries commits (the
# trigger of migration 0006): the worker listens on it instead of waiting out its poll.
CHANNEL = "codeshelf_webhooks"

_DELIVERIES = table_of(Delivery)
_EVENTS = table_of(Event)
_D = _DELIVERIES.c


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


@dataclass(frozen=True)
class Held:
    """A delivery this worker holds, with what it takes to send it."""

    id: int
    endpoint_id: int
    attempts: int  # the attempts made before this one
    event_public_id: str  # the webhook-id
    body: bytes


@dataclass(frozen=True)
class Sent:
    """One attempt made, not yet recorded."""

    held: Held
    started_at: datetime
    outcome: Outcome

    @property
    def ends_queue(self) -> bool:
        """A 410, or the schedule's last attempt failed: the delivery fails, the endpoint is
        disabled and the rest of its queue is not sent."""
        if self.outcome.delivered:
            return False
        return self.outcome.status_code == 410 or self.held.attempts + 1 > len(RETRY_DELAYS)


@dataclass(frozen=True)
class Claimed:
    """A batch held under one lock token, and the endpoints it goes to."""

    token: str
    held: list[Held]
    endpoints: dict[int, WebhookEndpoint]


@dataclass(frozen=True)
class Among:
    """Which endpoints' deliveries a claim may take: all but ``skip`` (those this worker is
    sending to already), or ``only`` one (a lane going on with its own queue)."""

    skip: frozenset[int] = frozenset()
    only: int | None = None


EVERY = Among()


def _due(now: datetime, limit: int, *, lock: bool = True, among: Among = EVERY) -> Select[int]:
    """The ids of up to ``limit`` due deliveries nobody holds, oldest due first (locked, and
    skipping those another transaction has locked, if ``lock``), of the endpoints ``among``."""
    due = (
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
    )
    if among.skip:
        due = due.where(Delivery.endpoint_id.not_in(sorted(among.skip)))
    if among.only is not None:
        due = due.where(Delivery.endpoint_id == among.only)
    return due.with_for_update(of=Delivery, skip_locked=True) if lock else due


def _claim(
    session: Session, now: datetime, limit: int, token: str, among: Among = EVERY
) -> list[int]:
    """Hold the due deliveries in one statement; their ids in the order they fell due."""
    rows = session.execute(
        update(_DELIVERIES)
        .where(_D.id.in_(_due(now, limit, among=among)))
        .values(locked_until=now + LOCK, lock_token=token)
        .returning(_D.id, _D.next_attempt_at)
    ).all()
    return [delivery_id for delivery_id, _ in sorted(rows, key=lambda row: (row[1], row[0]))]


def any_due(db: Database, now: datetime | None = None, among: Among = EVERY) -> bool:
    """Whether a delivery is due that nobody holds (a read: it takes no write lock)."""
    with db.read_session() as session:
        return session.scalar(_due(now or utcnow(), 1, lock=False, among=among)) is not None


def claim_due(db: Database, now: datetime, limit: int) -> list[tuple[int, str]]:
    """Hold up to ``limit`` due deliveries for this worker; returns (id, lock token) pairs."""
    token = secrets.token_hex(16)
    with db.session() as session:
        ids = _claim(session, now, limit, token)
    return [(delivery_id, token) for delivery_id in ids]


_ENDPOINTS = table_of(WebhookEndpoint)
# What signing needs of an endpoint: its secrets, the previous one during a rotation's overlap.
_SIGNING = (
    "id",
    "public_id",
    "url",
    "secret_sealed",
    "secret_key_id",
    "previous_secret_sealed",
    "previous_secret_key_id",
    "previous_secret_expires_at",
)
_LOAD = (
    select(
        _D.id,
        _D.attempts,
        _EVENTS.c.public_id,
        _EVENTS.c.payload,
        *(_ENDPOINTS.c[name].label(f"endpoint_{name}") for name in _SIGNING),
    )
    .join(_EVENTS, _EVENTS.c.id == _D.event_id)
    .join(_ENDPOINTS, _ENDPOINTS.c.id == _D.endpoint_id)
    .where(_D.id.in_(bindparam("ids", expanding=True)))
)


def _load(session: Session, ids: Sequence[int]) -> tuple[list[Held], dict[int, WebhookEndpoint]]:
    """The held deliveries (in the order of ``ids``) with their bodies, and their endpoints
    (detached: read once per batch), in one query."""
    found, endpoints = _unpack(session.execute(_LOAD, {"ids": list(ids)}).mappings())
    return [found[delivery_id] for delivery_id in ids], endpoints


def _unpack(
    rows: Iterable[RowMapping],
) -> tuple[dict[int, Held], dict[int, WebhookEndpoint]]:
    found: dict[int, Held] = {}
    endpoints: dict[int, WebhookEndpoint] = {}
    for row in rows:
        endpoint_id = row["endpoint_id"]
        if endpoint_id not in endpoints:
            endpoints[endpoint_id] = WebhookEndpoint(
                **{name: row[f"endpoint_{name}"] for name in _SIGNING}
            )
        found[row["id"]] = Held(
            row["id"], endpoint_id, row["attempts"], row["public_id"], _body(row["payload"])
        )
    return found, endpoints


def _claim_and_load(now: datetime, limit: int, token: str, among: Among) -> Select[Any]:
    """PostgreSQL: the claim and the load as one statement (the claim a data-modifying CTE)."""
    claimed = (
        update(_DELIVERIES)
        .where(_D.id.in_(_due(now, limit, among=among)))
        .values(locked_until=now + LOCK, lock_token=token)
        .returning(_D.id, _D.attempts, _D.event_id, _D.endpoint_id, _D.next_attempt_at)
        .cte("claimed")
    )
    return (
        select(
            claimed.c.id,
            claimed.c.attempts,
            claimed.c.next_attempt_at,
            _EVENTS.c.public_id,
            _EVENTS.c.payload,
            *(_ENDPOINTS.c[name].label(f"endpoint_{name}") for name in _SIGNING),
        )
        .join_from(claimed, _EVENTS, _EVENTS.c.id == claimed.c.event_id)
        .join(_ENDPOINTS, _ENDPOINTS.c.id == claimed.c.endpoint_id)
    )


def _body(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def claim_batch(db: Database, now: datetime, limit: int, among: Among = EVERY) -> Claimed | None:
    """Claim a batch and load what it takes to send it, in one transaction (on PostgreSQL one
    statement, in autocommit: a single round trip)."""
    token = secrets.token_hex(16)
    if not db.is_sqlite:
        with db.statement() as conn:
            rows = conn.execute(_claim_and_load(now, limit, token, among)).mappings().all()
        if not rows:
            return None
        found, endpoints = _unpack(rows)
        due = sorted(rows, key=lambda row: (row["next_attempt_at"], row["id"]))
        return Claimed(token, [found[row["id"]] for row in due], endpoints)
    with db.session() as session:
        ids = _claim(session, now, limit, token, among)
        if not ids:
            return None
        held, endpoints = _load(session, ids)
    return Claimed(token, held, endpoints)


def queues(claimed: Claimed) -> dict[int, list[Held]]:
    """A batch by endpoint, each endpoint's deliveries in claim order (oldest due first)."""
    found: dict[int, list[Held]] = {}
    for held in claimed.held:
        found.setdefault(held.endpoint_id, []).append(held)
    return found


@dataclass(frozen=True)
class Message:
    url: str
    body: bytes
    headers: dict[str, str]


@dataclass(frozen=True)
class Signer:
    """An endpoint's URL and the secrets it is signed with now (read once per batch, and again
    at each checkpoint: a secret rotated meanwhile signs from then on)."""

    url: str
    secrets: list[str]

    @classmethod
    def of(cls, vault: Vault, endpoint: WebhookEndpoint, now: datetime) -> Signer:
        return cls(endpoint.url, service.signing_secrets(vault, endpoint, now))

    def message(self, held: Held, now: datetime) -> Message:
        timestamp = int(now.timestamp())
        headers = signing.headers(self.secrets, held.event_public_id, timestamp, held.body)
        return Message(self.url, held.body, headers)


def client(
    *,
    allow_private: bool,
    resolve: urls.Resolve = urls.system_resolve,
    verify: ssl.SSLContext | bool = True,
    deadline: float = TIMEOUT,
) -> httpx.Client:
    """The client deliveries are sent with (``transport.client``): every address vetted and
    connected to as vetted, ``deadline`` seconds per attempt in all."""
    return transport.client(
        allow_private=allow_private, deadline=deadline, resolve=resolve, verify=verify
    )


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
    """One attempt. The URL's form is checked here; the addresses it resolves to are vetted by
    the connection (``client()``: resolved once, connected to as vetted), which also holds the
    attempt to its deadline: a receiver too slow for it is a time-out, a failure."""
    started = time.monotonic()

    def elapsed() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        urls.check(message.url, allow_private=allow_private, resolve=None)
        with client.stream(
            "POST", message.url, content=message.body, headers=message.headers
        ) as response:
            head = _first_bytes(response)
    except urls.UnsafeUrlError as exc:
        return Outcome(None, f"refused: {exc.detail}", None, elapsed(), None)
    except httpx.TimeoutException:
        return Outcome(None, "timed out", None, elapsed(), None)
    except httpx.HTTPError as exc:
        return Outcome(None, _failure(exc), None, elapsed(), None)
    return Outcome(
        response.status_code,
        None,
        printable(head.decode("utf-8", errors="replace"))[:EXCERPT] or None,
        elapsed(),
        _retry_after(response, now),
    )


def _failure(exc: httpx.HTTPError) -> str:
    """What went wrong, in words that tell a partner nothing about our network (a detailed
    connection error would say which internal ports answer)."""
    if isinstance(exc, httpx.ConnectError):
        return "could not connect"
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError):
        return "the receiver broke off the connection"
    return f"failed: {type(exc).__name__}"


def _first_bytes(response: httpx.Response) -> bytes:
    """At most EXCERPT_BYTES of the answer as sent (never decompressed); the rest is not
    read: the connection is closed instead (a huge or gzip-bomb answer costs nothing)."""
    kept = b""
    for chunk in response.iter_raw():
        kept += chunk
        if len(kept) >= EXCERPT_BYTES:
            break
    return kept[:EXCERPT_BYTES]


_UNPRINTABLE = dict.fromkeys(c for c in range(0x20) if c not in (0x09, 0x0A))
_UNPRINTABLE.update(dict.fromkeys(range(0x7F, 0xA0)))


def printable(text: str) -> str:
    """What a receiver sent, fit to store and show: no NUL (PostgreSQL text refuses it) and
    no other control character."""
    return text.translate(_UNPRINTABLE)


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
        # Renew the hold just before sending: another worker may have taken it over.
        if not _renew(session, [delivery_id], token, now):
            return None
        [held], endpoints = _load(session, [delivery_id])
    message = Signer.of(vault, endpoints[held.endpoint_id], now).message(held, now)
    sent = Sent(held, now, send(client, message, now, allow_private))
    recorded = _record(db, [sent], token)
    logged(endpoints[held.endpoint_id].public_id, [sent])
    return sent.outcome if recorded else None


def _renew(session: Session, ids: Sequence[int], token: str, now: datetime) -> set[int]:
    """Extend the holds still ours on deliveries still pending; returns their ids."""
    renewed = session.scalars(
        update(_DELIVERIES)
        .where(
            _D.id.in_(ids),
            _D.lock_token == token,
            _D.state == DeliveryState.PENDING,
        )
        .values(locked_until=now + LOCK)
        .returning(_D.id)
    )
    return set(renewed)


# Recording, one statement each for the whole batch: the deliveries that succeeded (the holds
# still ours: the attempt counted, the hold released, done); those that failed (the same, but
# still pending), then each one's retry time or failure; then the delivery log.
_HELD = (
    _D.id.in_(bindparam("ids", expanding=True)),
    _D.lock_token == bindparam("token"),
    _D.state == DeliveryState.PENDING,
)
_RELEASED = {"attempts": _D.attempts + 1, "locked_until": None, "lock_token": None}
_SUCCEEDED = (
    update(_DELIVERIES)
    .where(*_HELD)
    .values(
        **_RELEASED,
        state=DeliveryState.SUCCEEDED,
        completed_at=bindparam("at", type_=UTCDateTime()),
    )
    .returning(_D.id, _D.attempts)
)
_FAILED = update(_DELIVERIES).where(*_HELD).values(**_RELEASED).returning(_D.id, _D.attempts)
_SETTLE = (
    update(_DELIVERIES)
    .where(_D.id == bindparam("b_id"))
    .values(
        state=bindparam("b_state"),
        next_attempt_at=func.coalesce(bindparam("b_next", type_=UTCDateTime()), _D.next_attempt_at),
        completed_at=bindparam("b_completed", type_=UTCDateTime()),
    )
)
_LOG = insert(table_of(DeliveryAttempt))


def _record(db: Database, sent: list[Sent], token: str) -> list[Sent]:
    """Record the attempts in one transaction; returns those recorded (holds still ours)."""
    if not sent:
        return []
    with db.session() as session:
        return _record_in(session, sent, token)


def _record_in(session: Session, sent: list[Sent], token: str) -> list[Sent]:
    """Successes are marked done at the time of the batch's last send; failures are scheduled
    again (or failed for good, disabling their endpoint) each after its own attempt."""
    done = [s for s in sent if s.outcome.delivered]
    failed = [s for s in sent if not s.outcome.delivered]
    attempts: dict[int, int] = {}
    if done:
        at = max(s.started_at for s in done)
        rows = session.execute(_SUCCEEDED, {"ids": _ids(done), "token": token, "at": at})
        attempts.update((delivery_id, number) for delivery_id, number in rows)
    if failed:
        rows = session.execute(_FAILED, {"ids": _ids(failed), "token": token})
        attempts.update((delivery_id, number) for delivery_id, number in rows)
    kept = [s for s in sent if s.held.id in attempts]  # else another worker's result counts
    if not kept:
        return []
    session.execute(_LOG, [_log_row(s, attempts[s.held.id]) for s in kept])
    retried = [_settled(s, attempts[s.held.id]) for s in kept if not s.outcome.delivered]
    if retried:
        session.execute(_SETTLE, retried)
    for s in kept:
        if s.ends_queue:
            _disable(session, s, attempts[s.held.id])
    return kept


def _ids(sent: list[Sent]) -> list[int]:
    return [s.held.id for s in sent]


def _log_row(s: Sent, number: int) -> dict[str, Any]:
    return {
        "delivery_id": s.held.id,
        "number": number,
        "started_at": s.started_at,
        "status_code": s.outcome.status_code,
        "latency_ms": s.outcome.latency_ms,
        "response_excerpt": s.outcome.excerpt,
        "error": s.outcome.error,
    }


def _settled(s: Sent, attempts: int) -> dict[str, Any]:
    """A failed delivery's state after its ``attempts``-th attempt, as _SETTLE's parameters."""
    outcome, at = s.outcome, s.started_at
    row: dict[str, Any] = {"b_id": s.held.id, "b_next": None, "b_completed": at}
    delay = None if outcome.status_code == 410 else next_delay(attempts, outcome.retry_after)
    if delay is not None:
        return row | {"b_state": DeliveryState.PENDING, "b_next": at + delay, "b_completed": None}
    return row | {"b_state": DeliveryState.FAILED}


def _disable(session: Session, s: Sent, attempts: int) -> None:
    """The delivery failed for good: disable its endpoint, and fail the rest of its queue."""
    outcome, now = s.outcome, s.started_at
    endpoint = session.get_one(WebhookEndpoint, s.held.endpoint_id)
    if endpoint.status == EndpointStatus.DISABLED:
        return
    endpoint.status = EndpointStatus.DISABLED
    endpoint.disabled_reason = (
        "the receiver answered 410 Gone"
        if outcome.status_code == 410
        else f"every attempt failed for {attempts} tries over about three days "
        f"(last: {outcome.error or outcome.status_code})"
    )
    log.warning("disabled webhook endpoint %s: %s", endpoint.public_id, endpoint.disabled_reason)
    # Nothing more goes to it: its queue fails with it (replay once it is enabled again).
    session.execute(
        update(_DELIVERIES)
        .where(_D.endpoint_id == endpoint.id, _D.state == DeliveryState.PENDING)
        .values(state=DeliveryState.FAILED, completed_at=now, locked_until=None, lock_token=None)
    )


def _checkpoint(
    db: Database, vault: Vault, sent: list[Sent], todo: list[Held], token: str, now: datetime
) -> tuple[list[Held], Signer]:
    """Record what a long queue has sent so far and renew the holds of the rest; returns the
    rest still ours and still pending, and their endpoint's signer as it is now."""
    with db.session() as session:
        _record_in(session, sent, token)
        still = _renew(session, [held.id for held in todo], token, now)
        signer = Signer.of(vault, session.get_one(WebhookEndpoint, todo[0].endpoint_id), now)
    return [held for held in todo if held.id in still], signer


def _release(db: Database, held: list[Held], token: str) -> None:
    """Give back the holds still ours, unsent: the deliveries are due again at once, for the
    next worker (or this one's next pass) to send."""
    if not held:
        return
    with db.session() as session:
        session.execute(
            update(_DELIVERIES).where(*_HELD).values(locked_until=None, lock_token=None),
            {"ids": [h.id for h in held], "token": token},
        )


def send_queue(
    db: Database,
    vault: Vault,
    client: httpx.Client,
    claimed: Claimed,
    queue: list[Held],
    *,
    allow_private: bool,
    now: datetime | None = None,
    stop: threading.Event | None = None,
) -> None:
    """One endpoint's deliveries, in order; what was sent is recorded however this ends. Once
    ``stop`` is set no new attempt starts (the one under way ends by its deadline) and the
    rest of the queue is released, unsent."""
    endpoint = claimed.endpoints[queue[0].endpoint_id]
    signer = Signer.of(vault, endpoint, now or utcnow())
    todo: list[Held] = list(queue)
    sent: list[Sent] = []
    since = time.monotonic()
    try:
        while todo:
            if stop is not None and stop.is_set():
                break
            if time.monotonic() - since >= CHECKPOINT:
                logged(endpoint.public_id, sent)
                todo, signer = _checkpoint(db, vault, sent, todo, claimed.token, now or utcnow())
                sent, since = [], time.monotonic()
                continue
            held = todo.pop(0)
            at = now or utcnow()
            message = signer.message(held, at)
            sent.append(Sent(held, at, send(client, message, at, allow_private)))
            if sent[-1].ends_queue:
                todo = []
                break
    finally:
        _record(db, sent, claimed.token)
        logged(endpoint.public_id, sent)
        _release(db, todo, claimed.token)


def run_once(
    db: Database,
    vault: Vault,
    client: httpx.Client,
    *,
    allow_private: bool,
    batch: int = 50,
    now: datetime | None = None,
) -> int:
    """Send every delivery due now (up to ``batch``) and wait for them all; returns how many
    were attempted (``codeshelf worker --once``; the loop runs ``lanes.Lanes`` instead, which
    never waits for a slow endpoint).

    Each endpoint's deliveries go one after another (a 410 stops the rest of its queue), and
    endpoints in parallel.
    """
    claimed = claim_batch(db, now or utcnow(), batch)
    if claimed is None:
        return 0
    by_endpoint = queues(claimed)

    def send(queue: list[Held]) -> None:
        send_queue(db, vault, client, claimed, queue, allow_private=allow_private, now=now)

    if len(by_endpoint) == 1:
        send(next(iter(by_endpoint.values())))
    else:
        with ThreadPoolExecutor(max_workers=min(PARALLEL_ENDPOINTS, len(by_endpoint))) as pool:
            for finished in [pool.submit(send, queue) for queue in by_endpoint.values()]:
                finished.result()
    return len(claimed.held)


def logged(endpoint_public_id: str, sent: list[Sent]) -> None:
    """One ``webhook.delivery`` event per attempt: the endpoint, the event (``webhook_id``), the
    attempt's number, its outcome (delivered, retry or failed: given up) and our own words for
    an error; never the body, the signature or the receiver's answer."""
    for s in sent:
        outcome = "delivered" if s.outcome.delivered else "failed" if s.ends_queue else "retry"
        event(
            log, "webhook.delivery", endpoint=endpoint_public_id, webhook_id=s.held.event_public_id,
            attempt=s.held.attempts + 1, outcome=outcome, status_code=s.outcome.status_code,
            duration_ms=s.outcome.latency_ms, error=s.outcome.error,
        )  # fmt: skip
