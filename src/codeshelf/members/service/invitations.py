"""Inviting a member: a one-time link valid 72 hours; opening it sets a password, then enrols
the TOTP second factor, and only a correct code from the new authenticator creates the member.

Until then the chosen password's hash and the sealed TOTP secret wait on the invitation.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from codeshelf.audit import service as audit
from codeshelf.kit.errors import ConflictError, InvalidInputError, NotFoundError
from codeshelf.kit.ids import public_id
from codeshelf.kit.tokens import hash_key
from codeshelf.kit.vault import Vault
from codeshelf.members.models import MEMBER_PREFIX, Invitation, Member, RecoveryCode
from codeshelf.members.roles import Role
from codeshelf.members.service import credentials
from codeshelf.partners.models import Partner

INVITATION_HOURS = 72
INVITE_PATH = "/account/invite/"


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
        return INVITE_PATH + self.token


def normal_email(email: str) -> str:
    email = email.strip().lower()
    local, at, domain = email.partition("@")
    if not at or not local or "." not in domain or len(email) > 254 or " " in email:
        raise InvalidInputError(f"{email!r} is not an e-mail address", pointer="#/email")
    return email


def invite(
    session: Session, partner: Partner, email: str, role: str, actor: str, now: datetime
) -> IssuedInvitation:
    """A new invitation (any earlier open one to the same address is revoked)."""
    email = normal_email(email)
    try:
        role = Role(role)
    except ValueError:
        raise InvalidInputError(
            f"role must be one of {', '.join(Role)}", pointer="#/role"
        ) from None
    if session.scalar(select(Member.id).where(Member.email == email)) is not None:
        raise MemberExistsError(f"{email} already has a codeshelf account")
    for earlier in session.scalars(_open(now).where(Invitation.email == email)):
        earlier.revoked_at = now
    token = secrets.token_urlsafe(32)
    invitation = Invitation(
        partner_id=partner.id,
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
        action="member.invite",
        partner_public_id=partner.public_id,
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
    invitation.pending_totp_sealed = vault.seal_bytes(secret.encode(), _bound(invitation.email))
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
        sealed, _bound(invitation.email), invitation.pending_totp_key_id
    ).decode()


def _bound(email: str) -> bytes:
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
    partner = session.get(Partner, invitation.partner_id)
    assert partner is not None
    audit.record(
        session,
        actor=f"member:{member.public_id}",
        action="member.join",
        partner_public_id=partner.public_id,
        subject=member.email,
        details={"role": member.role},
    )
    return Accepted(member, codes)
