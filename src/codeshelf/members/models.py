"""People who sign in to the browser: a partner's members (the portal) and the wholesaler's own
staff (the console; a member with no partner), one role each, their invitations and sessions.

Secrets are never stored as given: passwords as argon2id hashes, the TOTP secret sealed by the
vault, and invitation links, recovery codes and session tokens (all high-entropy and random) as
SHA-256 hashes.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from codeshelf.kit.clock import utcnow
from codeshelf.kit.db import Base, UTCDateTime, one_of
from codeshelf.members.roles import ALL_ROLES, Role, StaffRole

MEMBER_PREFIX = "mbr"


def _role_checks() -> tuple[CheckConstraint, ...]:
    """A partner's member has a portal role; a staff member (no partner) a console role."""
    return (
        CheckConstraint(one_of("role", ALL_ROLES), name="role"),
        CheckConstraint(f"partner_id IS NULL OR {one_of('role', Role)}", name="partner_role"),
        CheckConstraint(
            f"partner_id IS NOT NULL OR {one_of('role', StaffRole)}", name="staff_role"
        ),
    )


class Member(Base):
    __tablename__ = "members"
    __table_args__ = (
        UniqueConstraint("email", name="uq_members_email"),
        *_role_checks(),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    partner_id: Mapped[int | None] = mapped_column(ForeignKey("partners.id"), index=True)
    email: Mapped[str] = mapped_column(String(254))  # lower-cased: one account per address
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(200))
    totp_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    totp_key_id: Mapped[str] = mapped_column(String(16))
    # The last TOTP time step accepted: a code is good once, however fast it is replayed.
    totp_last_step: Mapped[int] = mapped_column(default=0)
    failed_signins: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RecoveryCode(Base):
    __tablename__ = "member_recovery_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Invitation(Base):
    __tablename__ = "member_invitations"
    __table_args__ = _role_checks()

    id: Mapped[int] = mapped_column(primary_key=True)
    partner_id: Mapped[int | None] = mapped_column(ForeignKey("partners.id"), index=True)
    email: Mapped[str] = mapped_column(String(254))
    role: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    invited_by: Mapped[str] = mapped_column(String(64))  # an actor, as in the audit log
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Chosen on the invitation's first page, kept here until the second factor is confirmed.
    pending_password_hash: Mapped[str | None] = mapped_column(String(200))
    pending_totp_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    pending_totp_key_id: Mapped[str | None] = mapped_column(String(16))


class WebSession(Base):
    """A signed-in browser. ``member_id`` is set once the password is right; ``verified_at``
    once the second factor is too: only then does the session open any page."""

    __tablename__ = "web_sessions"
    __table_args__ = (Index("ix_web_sessions_member_id", "member_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
