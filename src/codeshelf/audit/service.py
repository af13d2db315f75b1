"""Writing to the append-only audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from codeshelf.audit.models import AuditEvent

OPERATOR_CLI = "operator:cli"
WORKER = "system:worker"  # the background worker acting on its own (serving waiting claims)


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    partner_public_id: str | None = None,
    api_key_public_id: str | None = None,
    subject: str | None = None,
    count: int | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    event = AuditEvent(
        actor=actor,
        action=action,
        partner_public_id=partner_public_id,
        api_key_public_id=api_key_public_id,
        subject=subject,
        count=count,
        details=details,
    )
    session.add(event)
    return event


def occurrences(session: Session, action: str, subject: str) -> tuple[int, datetime | None]:
    """How often ``action`` was recorded about ``subject``, and when first."""
    count, first = session.execute(
        select(func.count(), func.min(AuditEvent.occurred_at)).where(
            AuditEvent.action == action, AuditEvent.subject == subject
        )
    ).one()
    return int(count or 0), first


def events_about(session: Session, subject: str, action: str) -> list[AuditEvent]:
    """Every ``action`` recorded about ``subject``, oldest first (who, when, and its details:
    what a claim's operator reads of how an order's codes were revealed)."""
    return list(
        session.scalars(
            select(AuditEvent)
            .where(AuditEvent.action == action, AuditEvent.subject == subject)
            .order_by(AuditEvent.occurred_at, AuditEvent.id)
        )
    )


def partner_trail(
    session: Session,
    partner_public_id: str,
    *,
    search: str | None = None,
    before: int | None = None,
    limit: int = 50,
) -> list[AuditEvent]:
    """What was done on a partner's account, newest first: who revealed which order's codes,
    filed or changed claims, joined or managed the team. ``search`` matches the action, the
    actor or the subject (case-insensitively); ``before`` is the last event id of the page
    before."""
    query = select(AuditEvent).where(AuditEvent.partner_public_id == partner_public_id)
    if search:
        pattern = f"%{search.lower()}%"
        query = query.where(
            func.lower(AuditEvent.action).like(pattern)
            | func.lower(AuditEvent.actor).like(pattern)
            | func.lower(func.coalesce(AuditEvent.subject, "")).like(pattern)
        )
    if before is not None:
        query = query.where(AuditEvent.id < before)
    return list(session.scalars(query.order_by(AuditEvent.id.desc()).limit(limit)))


def search(
    session: Session,
    *,
    actor: str | None = None,
    partner_public_id: str | None = None,
    action: str | None = None,
    subject: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before: int | None = None,
    limit: int = 100,
) -> list[AuditEvent]:
    """The whole log, newest first, for the operator: ``actor`` and ``action`` match a prefix
    (``staff:`` is every staff member; ``claim.`` every claim action), ``subject`` exactly;
    ``since``/``until`` bound the time; ``before`` is the last event id of the page before."""
    query = select(AuditEvent)
    if actor:
        query = query.where(AuditEvent.actor.startswith(actor, autoescape=True))
    if partner_public_id:
        query = query.where(AuditEvent.partner_public_id == partner_public_id)
    if action:
        query = query.where(AuditEvent.action.startswith(action, autoescape=True))
    if subject:
        query = query.where(AuditEvent.subject == subject)
    if since is not None:
        query = query.where(AuditEvent.occurred_at >= since)
    if until is not None:
        query = query.where(AuditEvent.occurred_at < until)
    if before is not None:
        query = query.where(AuditEvent.id < before)
    return list(session.scalars(query.order_by(AuditEvent.id.desc()).limit(limit)))
