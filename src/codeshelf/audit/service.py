"""Writing to the append-only audit log."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from codeshelf.audit.models import AuditEvent

OPERATOR_CLI = "operator:cli"


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
