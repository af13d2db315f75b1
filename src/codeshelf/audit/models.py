from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from codeshelf.kit.clock import utcnow
from codeshelf.kit.db import Base, UTCDateTime


class AuditEvent(Base):
    """Append-only: database triggers refuse UPDATE and DELETE on this table."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(64))  # "partner:ptr_…", "operator:cli"
    action: Mapped[str] = mapped_column(String(64), index=True)  # "codes.reveal", "wallet.deposit"
    partner_public_id: Mapped[str | None] = mapped_column(String(32), index=True)
    api_key_public_id: Mapped[str | None] = mapped_column(String(32))
    subject: Mapped[str | None] = mapped_column(String(128))  # the order, batch, … acted on
    count: Mapped[int | None]
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
