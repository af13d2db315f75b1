"""The worker's passes. Each runs in transactions of its own; none lets an error stop the
others (it is logged, and the next pass tries again)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx
from sqlalchemy.orm import Session

from codeshelf.audit import service as audit
from codeshelf.claims import service as claims
from codeshelf.idempotency import service as idempotency
from codeshelf.kit.clock import utcnow
from codeshelf.kit.db import Database
from codeshelf.kit.logs import event
from codeshelf.kit.settings import Settings
from codeshelf.kit.vault import Vault
from codeshelf.orders import service as orders
from codeshelf.stock import service as stock
from codeshelf.webhooks import delivery, lanes
from codeshelf.webhooks import service as webhooks

log = logging.getLogger("codeshelf.worker")
Report = Callable[[str], None]


@dataclass(frozen=True)
class Served:
    """What new stock (or the passing of time) did for those waiting on it."""

    claims: list[str] = field(default_factory=list)  # claims resolved with replacement codes
    expired: list[str] = field(default_factory=list)  # backorders failed at their deadline
    filled: list[str] = field(default_factory=list)  # backorders delivered

    def lines(self) -> list[str]:
        found = [
            ("replacement codes sent for claim(s)", self.claims),
            ("backorders expired", self.expired),
            ("backorders delivered", self.filled),
        ]
        return [f"{label}: {', '.join(ids)}" for label, ids in found if ids]

    def log(self) -> None:
        """An event per backorder filled or expired and per claim sent replacement codes."""
        for order in self.filled:
            event(log, "backorder.filled", order=order)
        for order in self.expired:
            event(log, "backorder.expired", order=order)
        for claim in self.claims:
            event(log, "claim.replacement_sent", claim=claim)


def after_stock_arrives(session: Session, actor: str = audit.WORKER) -> Served:
    """Serve what waits for stock, in the caller's transaction: approved claims waiting for
    replacements first (their codes are owed), the longest waiting first; then backorders, first
    come first served, once those past their deadline have failed (a late one is never filled).
    """
    resolved = claims.fulfil_waiting(session, claims.Actor(actor))
    expired, filled = orders.tick(session, utcnow())
    return Served(resolved, expired, filled)


def serve_waiting(db: Database, report: Report) -> Served:
    """The worker's stock pass: ``after_stock_arrives`` in a transaction of its own."""
    try:
        with db.session() as session:
            served = after_stock_arrives(session)
    except Exception:
        log.exception("the pass over waiting claims and backorders failed; retrying next pass")
        return Served()
    served.log()
    for line in served.lines():
        report(line)
    return served


def advance_stock_floors(db: Database) -> None:
    """Move each product's pick floor up to its first available code (PostgreSQL), so an
    order's pick reads a few index pages however many codes were sold before it."""
    try:
        with db.session() as session:
            stock.floors.advance(session)
    except Exception:
        log.exception("moving the stock floors failed; retrying next pass")


def send_webhooks(
    db: Database, vault: Vault, client: httpx.Client, settings: Settings, batch: int
) -> int:
    """Deliver what is due; returns how many deliveries were attempted. A pass that fails
    is logged and the worker goes on (its holds expire and the deliveries are tried again):
    nothing one partner's receiver does may stop the worker for everyone."""
    try:
        return delivery.run_once(
            db, vault, client, allow_private=settings.webhook_allow_private, batch=batch
        )
    except Exception:
        log.exception("a webhook pass failed; going on")
        return 0


def start_webhooks(sending: lanes.Lanes) -> int:
    """Start sending what is due to endpoints without a lane (the loop's pass: it does not
    wait for them); how many deliveries were claimed. A failure is logged, the worker goes on."""
    try:
        return sending.run_pass()
    except Exception:
        log.exception("a webhook pass failed; going on")
        return 0


def purge(db: Database, now: datetime, retention: timedelta, report: Report) -> None:
    """Idempotency keys past their 24-hour retention; events and their deliveries past theirs."""
    try:
        with db.session() as session:
            idempotency.purge_expired(session, now)
            purged = webhooks.purge_before(session, now - retention)
    except Exception:
        log.exception("purge failed; retrying in an hour")
        return
    if purged:
        report(f"purged {purged} events older than {retention.days} days")
