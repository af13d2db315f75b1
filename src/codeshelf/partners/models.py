from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from codeshelf.kit.clock import utcnow
from codeshelf.kit.db import Base, UTCDateTime


class KeyMode(StrEnum):
    LIVE = "live"  # cs_live_: the partner's real money and stock
    TEST = "test"  # cs_test_: its sandbox twin


class Partner(Base):
    __tablename__ = "partners"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    # None means the global CODESHELF_RATE_LIMIT_PER_MINUTE.
    rate_limit_per_minute: Mapped[int | None]
    # A sandbox partner (reached with cs_test_ keys) is the twin of one live partner.
    sandbox_of_id: Mapped[int | None] = mapped_column(ForeignKey("partners.id"), unique=True)
    # Orders above these go to manual review (None: CODESHELF_REVIEW_* defaults apply).
    review_quantity_over: Mapped[int | None]
    review_amount_over_minor: Mapped[int | None]
    review_amount_currency: Mapped[str | None] = mapped_column(String(3))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def is_sandbox(self) -> bool:
        return self.sandbox_of_id is not None

    @property
    def price_list_id(self) -> int:
        """Whose prices apply: a sandbox partner mirrors its live twin's price list."""
        return self.sandbox_of_id or self.id


class ApiKey(Base):
    """A partner's API key; only its SHA-256 hash is stored."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), index=True)
    mode: Mapped[str] = mapped_column(String(8), default=KeyMode.LIVE)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The first characters of the key, safe to display so an operator can tell keys apart.
    prefix: Mapped[str] = mapped_column(String(24))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When it last authenticated a request, to the minute (written at most once a minute).
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
