"""An application for a partner account: what the applicant told us, where the review stands,
and the link that shows the applicant that status (its token kept as a SHA-256 hash)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from codeshelf.kit.clock import utcnow
from codeshelf.kit.db import Base, UTCDateTime, one_of

APPLICATION_PREFIX = "apl"


class ApplicationStatus(StrEnum):
    SUBMITTED = "submitted"
    UNDER_REVIEW = "under_review"
    APPROVED = "approved"  # the partner exists and its owner is invited
    DECLINED = "declined"


OPEN_STATUSES = (ApplicationStatus.SUBMITTED, ApplicationStatus.UNDER_REVIEW)
OPEN_WHERE = "status IN ('submitted', 'under_review')"


class BuyerType(StrEnum):
    RESELLER = "reseller"
    MARKETPLACE = "marketplace"
    GAMING_PLATFORM = "gaming_platform"
    REWARDS = "rewards"  # loyalty and incentive programmes
    OTHER = "other"


class PaymentPreference(StrEnum):
    BANK_TRANSFER = "bank_transfer"
    CARD = "card"
    OTHER = "other"


class Integration(StrEnum):
    API = "api"  # orders through the API
    MANUAL = "manual"  # orders through the portal, codes by file


class Application(Base):
    __tablename__ = "access_applications"
    __table_args__ = (
        CheckConstraint(one_of("status", ApplicationStatus), name="status"),
        CheckConstraint(one_of("buyer_type", BuyerType), name="buyer_type"),
        CheckConstraint(one_of("payment_preference", PaymentPreference), name="payment"),
        CheckConstraint(one_of("integration", Integration), name="integration"),
        CheckConstraint("monthly_volume_minor >= 0", name="volume_not_negative"),
        # One open application per e-mail address, even when two are sent at the same moment.
        Index(
            "uq_access_applications_open_email",
            "email",
            unique=True,
            postgresql_where=text(OPEN_WHERE),
            sqlite_where=text(OPEN_WHERE),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # the status link's
    status: Mapped[str] = mapped_column(String(16), default=ApplicationStatus.SUBMITTED)
    company: Mapped[str] = mapped_column(String(200))
    website: Mapped[str | None] = mapped_column(String(200))
    country: Mapped[str] = mapped_column(String(2))  # ISO 3166-1 alpha-2
    contact_name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(254), index=True)
    buyer_type: Mapped[str] = mapped_column(String(24))
    monthly_volume_minor: Mapped[int]
    volume_currency: Mapped[str] = mapped_column(String(3))
    regions: Mapped[str] = mapped_column(String(200))  # comma-separated region codes
    payment_preference: Mapped[str] = mapped_column(String(24))
    integration: Mapped[str] = mapped_column(String(16))
    use_case: Mapped[str] = mapped_column(Text)
    message: Mapped[str | None] = mapped_column(Text)  # the operator's, shown to the applicant
    reviewed_by: Mapped[str | None] = mapped_column(String(64))
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    partner_id: Mapped[int | None] = mapped_column(ForeignKey("partners.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
