from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from codeshelf.kit.clock import utcnow
from codeshelf.kit.db import Base, UTCDateTime, one_of

CLAIM_PREFIX = "clm"  # a claim's public id: clm_ and 20 hex digits


class ClaimStatus(StrEnum):
    SUBMITTED = "submitted"
    TRIAGED = "triaged"
    NEEDS_INFO = "needs_info"
    APPROVED = "approved"
    REJECTED = "rejected"
    ESCALATED = "escalated_upstream"
    RESOLVED = "resolved"
    CANCELLED = "cancelled"


# A claim is open until it is rejected, resolved or cancelled; an open claim holds its codes.
OPEN_STATUSES = (
    ClaimStatus.SUBMITTED,
    ClaimStatus.TRIAGED,
    ClaimStatus.NEEDS_INFO,
    ClaimStatus.APPROVED,
    ClaimStatus.ESCALATED,
)
TRANSITIONS: dict[str, set[ClaimStatus]] = {
    ClaimStatus.SUBMITTED: {ClaimStatus.TRIAGED, ClaimStatus.CANCELLED},
    ClaimStatus.TRIAGED: {
        ClaimStatus.NEEDS_INFO,
        ClaimStatus.APPROVED,
        ClaimStatus.REJECTED,
        ClaimStatus.ESCALATED,
        ClaimStatus.CANCELLED,
    },
    # The operator may still decide a claim whose partner never answered.
    ClaimStatus.NEEDS_INFO: {
        ClaimStatus.SUBMITTED,
        ClaimStatus.APPROVED,
        ClaimStatus.REJECTED,
        ClaimStatus.CANCELLED,
    },
    ClaimStatus.ESCALATED: {ClaimStatus.APPROVED, ClaimStatus.REJECTED},
    ClaimStatus.APPROVED: {ClaimStatus.RESOLVED},
    ClaimStatus.REJECTED: set(),
    ClaimStatus.RESOLVED: set(),
    ClaimStatus.CANCELLED: set(),
}


class Channel(StrEnum):
    API = "api"  # filed by the partner through POST /claims: priority triage (policy section 5)
    OPERATOR = "operator"  # filed by the operator for a claim received another way (e-mail)


PRIORITY: dict[str, int] = {Channel.API: 1, Channel.OPERATOR: 2}  # lower is triaged first


class RemedyKind(StrEnum):
    REPLACEMENT = "replacement"
    REFUND = "refund"


class RemedyState(StrEnum):
    WAITING = "waiting"  # approved, waiting for stock to replace the code
    DONE = "done"


class CodeDecision(StrEnum):
    """The operator's decision on one code of a claim (None until decided)."""

    APPROVED = "approved"
    REJECTED = "rejected"


class Claim(Base):
    """A partner's code-support claim on codes of one order."""

    __tablename__ = "claims"
    __table_args__ = (
        CheckConstraint(one_of("status", ClaimStatus), name="status"),
        CheckConstraint(one_of("channel", Channel), name="channel"),
        CheckConstraint(one_of("remedy", RemedyKind), name="remedy"),
        Index("ix_claims_queue", "due_at", "priority"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), index=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    status: Mapped[str] = mapped_column(String(24), default=ClaimStatus.SUBMITTED)
    channel: Mapped[str] = mapped_column(String(16))
    priority: Mapped[int]
    policy_version: Mapped[str] = mapped_column(String(16))
    remedy: Mapped[str] = mapped_column(String(16))
    problem: Mapped[str] = mapped_column(String(32))
    account_region: Mapped[str | None] = mapped_column(String(8))
    attempted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error_code: Mapped[str | None] = mapped_column(String(32))
    exposed_publicly: Mapped[bool] = mapped_column(default=False)
    description: Mapped[str | None] = mapped_column(Text)
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    triage_due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    triaged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    upstream_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    remedy_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The deadline of the current stage (None while waiting on the partner, or once closed).
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    info_request: Mapped[str | None] = mapped_column(Text)  # what the operator asked for
    decision_rule: Mapped[str | None] = mapped_column(String(64))
    decision_reason: Mapped[str | None] = mapped_column(Text)  # the operator's, internal
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    codes: Mapped[list[ClaimCode]] = relationship(
        back_populates="claim", order_by="ClaimCode.id", lazy="selectin"
    )
    evidence: Mapped[list[ClaimEvidence]] = relationship(
        order_by="ClaimEvidence.id", lazy="selectin"
    )


class ClaimCode(Base):
    """One claimed code and its verdict under the claim's policy version."""

    __tablename__ = "claim_codes"
    __table_args__ = (
        CheckConstraint(f"decision IS NULL OR {one_of('decision', CodeDecision)}", name="decision"),
        # A code is in at most one open claim.
        Index(
            "uq_claim_codes_open_code",
            "code_id",
            unique=True,
            postgresql_where=text("open"),
            sqlite_where=text("open"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    claim_id: Mapped[int] = mapped_column(ForeignKey("claims.id"), index=True)
    code_id: Mapped[int] = mapped_column(ForeignKey("codes.id"), index=True)
    order_item_id: Mapped[int] = mapped_column(ForeignKey("order_items.id"))
    open: Mapped[bool] = mapped_column(default=True)
    problem: Mapped[str] = mapped_column(String(32))
    code_region: Mapped[str | None] = mapped_column(String(8))
    error_code: Mapped[str | None] = mapped_column(String(32))
    masked: Mapped[str] = mapped_column(String(32))  # e.g. ****-****-AB12
    verdict: Mapped[str] = mapped_column(String(16))
    classification: Mapped[str] = mapped_column(String(16))
    rule: Mapped[str | None] = mapped_column(String(64))
    missing: Mapped[list[str]] = mapped_column(JSON, default=list)
    decision: Mapped[str | None] = mapped_column(String(16))
    decision_rule: Mapped[str | None] = mapped_column(String(64))  # a rejected code's rule
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    claim: Mapped[Claim] = relationship(back_populates="codes")
    remedy: Mapped[Remedy | None] = relationship(lazy="selectin")


class ClaimEvidence(Base):
    """An uploaded screenshot: the file lives in the evidence store, encrypted; this is its
    record (what it is, how big, its SHA-256 before encryption)."""

    __tablename__ = "claim_evidence"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    claim_id: Mapped[int] = mapped_column(ForeignKey("claims.id"), index=True)
    media_type: Mapped[str] = mapped_column(String(32))
    size_bytes: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str] = mapped_column(String(16))
    storage_key: Mapped[str] = mapped_column(String(128))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Remedy(Base):
    """The one remedy a claimed code ever gets: ``code_id`` is unique."""

    __tablename__ = "claim_remedies"
    __table_args__ = (
        CheckConstraint(one_of("kind", RemedyKind), name="kind"),
        CheckConstraint(one_of("state", RemedyState), name="state"),
        CheckConstraint(
            "state != 'done' OR (kind = 'refund') = (ledger_transaction_id IS NOT NULL)",
            name="refund_has_transaction",
        ),
        CheckConstraint(
            "state != 'done' OR (kind = 'replacement') = (replacement_order_id IS NOT NULL)",
            name="replacement_has_order",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    claim_code_id: Mapped[int] = mapped_column(ForeignKey("claim_codes.id"), unique=True)
    code_id: Mapped[int] = mapped_column(ForeignKey("codes.id"), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), default=RemedyState.WAITING)
    amount_minor: Mapped[int | None]  # the refund: what was paid for the code
    currency: Mapped[str | None] = mapped_column(String(3))
    ledger_transaction_id: Mapped[int | None] = mapped_column(
        ForeignKey("ledger_transactions.id"), unique=True
    )
    replacement_order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
