from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from codeshelf.kit.clock import utcnow
from codeshelf.kit.db import Base, UTCDateTime


class KeyState(StrEnum):
    PROCESSING = "processing"  # claimed by a request still running (or one that died)
    COMPLETED = "completed"  # the response is stored and replayed to retries


class IdempotencyRecord(Base):
    """A partner's Idempotency-Key and, once the work is done, the response it produced."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("partner_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"))
    key: Mapped[str] = mapped_column(String(255))
    request_fingerprint: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), default=KeyState.PROCESSING)
    lock_token: Mapped[str] = mapped_column(String(32))
    locked_until: Mapped[datetime] = mapped_column(UTCDateTime)
    response_status: Mapped[int | None]
    response_body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
