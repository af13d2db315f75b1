"""``codeshelf worker`` (webhook delivery) and ``codeshelf webhooks …`` (log and replay)."""

from __future__ import annotations

import logging
import signal
import time
from datetime import datetime, timedelta
from types import FrameType
from typing import Annotated, Any

import httpx
import typer
from sqlalchemy import select

from codeshelf.cli import context
from codeshelf.cli.output import domain_errors, emit, err, say, table
from codeshelf.idempotency import service as idempotency
from codeshelf.kit.clock import utcnow
from codeshelf.kit.db import Database
from codeshelf.orders.service import fulfilment
from codeshelf.partners.models import Partner
from codeshelf.webhooks import delivery, service
from codeshelf.webhooks.models import WebhookEndpoint

log = logging.getLogger("codeshelf.worker")
webhooks_app = typer.Typer(no_args_is_help=True, help="Webhook deliveries: the log, replays.")
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]


PURGE_EVERY = timedelta(hours=1)


def _orders_pass(db: Database) -> None:
    """Fail backorders past their deadline, then fill what the stock allows.

    An error here (a deadlock, a lost connection, one order's bug) is logged and the next pass
    tries again: it must not stop webhook delivery.
    """
    try:
        with db.session() as session:
            expired, filled = fulfilment.tick(session, utcnow())
    except Exception:
        log.exception("backorder pass failed; retrying on the next pass")
        return
    if expired:
        say(f"backorders expired: {', '.join(expired)}", console=err)
    if filled:
        say(f"backorders delivered: {', '.join(filled)}", console=err)


def _purge(db: Database, now: datetime, retention: timedelta) -> None:
    """Idempotency keys past their 24-hour retention; events and their deliveries past theirs."""
    try:
        with db.session() as session:
            idempotency.purge_expired(session, now)
            purged = service.purge_before(session, now - retention)
    except Exception:
        log.exception("purge failed; retrying in an hour")
        return
    if purged:
        say(f"purged {purged} events older than {retention.days} days", console=err)


def worker(
    once: Annotated[bool, typer.Option("--once", help="Send what is due now, then exit.")] = False,
    batch: Annotated[int, typer.Option(min=1, max=1000)] = 50,
) -> None:
    """Deliver webhooks from the outbox, with retries; run beside `codeshelf serve`.

    Each pass also fails backorders past their deadline and fills backorders from new stock.

    Several workers may run against one PostgreSQL: each delivery is held by one at a time.
    Stop with Ctrl-C or SIGTERM; a delivery cut off mid-send is sent again later.
    """
    settings = context.settings()
    db = context.database()
    vault = context.vault()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    stopping = False

    def stop(_signal: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    last_purge = None
    with httpx.Client(timeout=delivery.TIMEOUT, follow_redirects=False) as client:
        while not stopping:
            _orders_pass(db)
            sent = delivery.run_once(
                db, vault, client, allow_private=settings.webhook_allow_private, batch=batch
            )
            now = utcnow()
            if last_purge is None or now - last_purge >= PURGE_EVERY:
                _purge(db, now, timedelta(days=settings.event_retention_days))
                last_purge = now
            if sent:
                say(f"attempted {sent} deliveries", console=err)
            if once:
                break
            if not sent:
                time.sleep(settings.worker_poll_seconds)
    db.dispose()


@webhooks_app.command("replay")
def replay(event_id: str, as_json: JsonOption = False) -> None:
    """Send an event again to its partner's endpoints (same webhook-id), next worker pass."""
    with domain_errors(), context.database().session() as session:
        endpoints = service.replay(session, event_id)
    data = {"event_id": event_id, "endpoints": endpoints}
    emit(data, as_json, lambda: say(f"queued {event_id} for {len(endpoints)} endpoint(s)"))


@webhooks_app.command("log")
def delivery_log(
    endpoint_id: str,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    as_json: JsonOption = False,
) -> None:
    """An endpoint's latest delivery attempts: status code, latency, response excerpt."""
    with domain_errors(), context.database().read_session() as session:
        endpoint = session.scalar(
            select(WebhookEndpoint).where(WebhookEndpoint.public_id == endpoint_id)
        )
        if endpoint is None:
            raise service.EndpointNotFoundError(f"no webhook endpoint {endpoint_id}")
        partner = session.get_one(Partner, endpoint.partner_id)
        rows = service.delivery_log(session, endpoint, limit)
        attempts: list[dict[str, Any]] = [
            {
                "event_id": event.public_id,
                "event": event.type,
                "attempt": attempt.number,
                "started_at": attempt.started_at,
                "status_code": attempt.status_code,
                "latency_ms": attempt.latency_ms,
                "error": attempt.error,
                "response_excerpt": attempt.response_excerpt,
                "delivery_state": state.state,
            }
            for attempt, state, event in rows
        ]
        data: dict[str, Any] = {
            "endpoint_id": endpoint.public_id,
            "partner_id": partner.public_id,
            "url": endpoint.url,
            "status": endpoint.status,
            "disabled_reason": endpoint.disabled_reason,
            "attempts": attempts,
        }

    def render() -> None:
        say(f"{data['endpoint_id']} {data['url']} ({data['status']})")
        if data["disabled_reason"]:
            say(f"disabled: {data['disabled_reason']}")
        columns = [
            "event_id",
            "event",
            "attempt",
            "started_at",
            "status_code",
            "latency_ms",
            "error",
            "delivery_state",
        ]
        table(
            "deliveries",
            columns,
            [[a[c] if a[c] is not None else "" for c in columns] for a in attempts],
        )

    emit(data, as_json, render)
