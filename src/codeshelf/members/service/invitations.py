"""Inviting a member: a one-time link valid 72 hours; opening it sets a password, then enrols
the TOTP second factor, and only a correct code from the new authenticator creates the member.

Until then the chosen password's hash and the sealed TOTP secret wait on the invitation.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from codeshelf.audit import service as audit
from codeshelf.kit.errors import ConflictError, InvalidInputError, NotFoundError
from codeshelf.kit.ids import public_id
from codeshelf.kit.tokens import hash_key
from codeshelf.kit.vault import Vault
from codeshelf.members.models import MEMBER_PREFIX, Invitation, Member, RecoveryCode
from codeshelf.members.roles import Role, StaffRole
from codeshelf.members.service import credentials
from codeshelf.partners.models import Partner

INVITATION_HOURS = 72
INVITE_PATH = "/account/invite/"
STAFF_INVITE_PATH = "/ops/invite/"


class InvitationUnusableError(NotFoundError):
    slug = "invitation-unusable"


class MemberExistsError(ConflictError):
    slug = "member-exists"


class WrongCodeError(InvalidInputError):
    slug = "wrong-authentication-code"


@dataclass(frozen=True)
class IssuedInvitation:
    invitation: Invitation
    token: str

    @property
    def path(self) -> str:
        staff = self.invitation.partner_id is None
        return (STAFF_INVITE_PATH if staff else INVITE_PATH) + self.token


def actor_of(member: Member) -> str:
    """How the audit log names a person: ``member:mbr_…`` (a partner's), ``staff:mbr_…``."""
    return f"{'staff' if member.partner_id is None else 'member'}:{member.public_id}"


def normal_email(email: str) -> str:
    email = email.strip().lower()
    local, at, domain = email.partition("@")
    if not at or not local or "." not in domain or len(email) > 254 or " " in email:
        raise InvalidInputError(f"{email!r} is not an e-mail address", pointer="#/email")
    return email


def invite(
    session: Session, partner: Partner | None, email: str, role: str, actor: str, now: datetime
) -> IssuedInvitation:
    """A new invitation to a partner's team, or to the staff when ``partner`` is None (any
    earlier open one to the same address is revoked)."""
    email = normal_email(email)
    roles: type[StrEnum] = Role if partner is not None else StaffRole
    try:
        role = roles(role)
    except ValueError:
        raise InvalidInputError(
            f"role must be one of {', '.join(roles)}", pointer="#/role"
        ) from None
    if session.scalar(select(Member.id).where(Member.email == email)) is not None:
        raise MemberExistsError(f"{email} already has a codeshelf account")
    for earlier in session.scalars(_open(now).where(Invitation.email == email)):
        earlier.revoked_at = now
    token = secrets.token_urlsafe(32)
    invitation = Invitation(
        partner_id=partner.id if partner is not None else None,
        email=email,
        role=role,
        token_hash=hash_key(token),
        invited_by=actor,
        created_at=now,
        expires_at=now + timedelta(hours=INVITATION_HOURS),
    )
    session.add(invitation)
    audit.record(
        session,
        actor=actor,
        action="staff.invite" if partner is None else "member.invite",
        partner_public_id=partner.public_id if partner is not None else None,
        subject=email,
        details={"role": role},
    )
    return IssuedInvitation(invitation, token)


def _open(now: datetime) -> Select[Invitation]:
    return select(Invitation).where(
        Invitation.accepted_at.is_(None),
        Invitation.revoked_at.is_(None),
        Invitation.expires_at > now,
    )


def open_invitation(session: Session, token: str, now: datetime) -> Invitation:
    """The invitation of a link, or InvitationUnusableError (unknown, used, revoked, expired)."""
    if not token or len(token) > 100:
        raise _unusable()
    found: Invitation | None = session.scalar(
        _open(now).where(Invitation.token_hash == hash_key(token))
    )
    if found is None:
        raise _unusable()
    return found


def _unusable() -> InvitationUnusableError:
    return InvitationUnusableError(
        "this invitation link is unknown, used, revoked or expired: ask for a new one"
    )


@dataclass(frozen=True)
class Enrolment:
    secret: str  # shown as text beside its QR code, once
    qr_svg: str


def choose_password(
    session: Session, vault: Vault, token: str, password: str, now: datetime
) -> Enrolment:
    """Step one: the password (checked against the rule), and a new TOTP secret to enrol."""
    invitation = open_invitation(session, token, now)
    credentials.check_password_rule(password, invitation.email)
    secret = credentials.new_totp_secret()
    invitation.pending_password_hash = credentials.hash_password(password)
    invitation.pending_totp_sealed = vault.seal_bytes(
        secret.encode(), totp_binding(invitation.email)
    )
    invitation.pending_totp_key_id = vault.key_id
    return Enrolment(secret, credentials.totp_qr_svg(secret, invitation.email))


def pending_enrolment(session: Session, vault: Vault, token: str, now: datetime) -> Enrolment:
    """The TOTP secret chosen in step one, to show again (a reload of the page)."""
    invitation = open_invitation(session, token, now)
    secret = _pending_secret(vault, invitation)
    return Enrolment(secret, credentials.totp_qr_svg(secret, invitation.email))


def _pending_secret(vault: Vault, invitation: Invitation) -> str:
    if invitation.pending_totp_sealed is None or invitation.pending_totp_key_id is None:
        raise InvalidInputError("choose a password first")
    sealed = invitation.pending_totp_sealed
    return vault.open_bytes(
        sealed, totp_binding(invitation.email), invitation.pending_totp_key_id
    ).decode()


def totp_binding(email: str) -> bytes:
    """What a TOTP secret is sealed bound to: its member's address (rows cannot swap them)."""
    return b"totp:" + email.encode()


@dataclass(frozen=True)
class Accepted:
    member: Member
    recovery_codes: list[str]  # shown once


def confirm(session: Session, vault: Vault, token: str, code: str, now: datetime) -> Accepted:
    """Step two: a code from the new authenticator proves it works; the member is created."""
    invitation = open_invitation(session, token, now)
    secret = _pending_secret(vault, invitation)
    step = credentials.totp_step(secret, code, now)
    if step is None or invitation.pending_password_hash is None:
        raise WrongCodeError("that code is not right: enter the 6 digits your app shows now")
    if session.scalar(select(func.count()).where(Member.email == invitation.email)):
        raise MemberExistsError(f"{invitation.email} already has a codeshelf account")
    member = Member(
        public_id=public_id(MEMBER_PREFIX),
        partner_id=invitation.partner_id,
        email=invitation.email,
        role=invitation.role,
        password_hash=invitation.pending_password_hash,
        totp_sealed=invitation.pending_totp_sealed,
        totp_key_id=invitation.pending_totp_key_id,
        totp_last_step=step,
        created_at=now,
    )
    session.add(member)
    session.flush()
    invitation.accepted_at = now
    invitation.pending_password_hash = None
    codes = credentials.new_recovery_codes()
    session.add_all(
        RecoveryCode(member_id=member.id, code_hash=credentials.recovery_hash(c)) for c in codes
    )
    partner = session.get(Partner, invitation.partner_id) if invitation.partner_id else None
    audit.record(
        session,
        actor=actor_of(member),
        action="member.join" if partner else "staff.join",
        partner_public_id=partner.public_id if partner else None,
        subject=member.email,
        details={"role": member.role},
    )
    return Accepted(member, codes)
