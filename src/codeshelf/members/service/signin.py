"""Signing in and staying signed in: the password, then the second factor, each wrong attempt
counted against the account (five in a row lock it for 15 minutes), and server-side sessions
that end after 30 idle minutes, 12 hours in all, at sign-out, or when the member is removed.

A session's token is given to the browser only; the database keeps its SHA-256 hash.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.orm import Session

from codeshelf.audit import service as audit
from codeshelf.kit.errors import DomainError
from codeshelf.kit.tokens import hash_key
from codeshelf.kit.vault import Vault
from codeshelf.members.models import Member, RecoveryCode, WebSession
from codeshelf.members.service import credentials, invitations
from codeshelf.partners.models import Partner

MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=15)
SEEN_EVERY = timedelta(seconds=60)  # last_seen_at is written at most this often


class SignInRefusedError(DomainError):
    slug = "sign-in-refused"


class AccountLockedError(SignInRefusedError):
    slug = "account-locked"

    def __init__(self, until: datetime) -> None:
        super().__init__(f"too many wrong attempts: this account is locked until {until:%H:%M} UTC")
        self.until = until


@dataclass(frozen=True)
class Lifetimes:
    idle: timedelta
    absolute: timedelta


@dataclass(frozen=True)
class Started:
    session: WebSession
    token: str  # for the cookie; never stored


def _wrong() -> SignInRefusedError:
    return SignInRefusedError("the e-mail address, password or code is not right")


def active_member(session: Session, email: str, *, staff: bool = False) -> Member | None:
    """The member signing in with ``email``: a partner's member, or with ``staff`` one of the
    wholesaler's staff. Neither kind can sign in through the other's door."""
    return session.scalar(
        select(Member).where(
            Member.email == email.strip().lower(),
            Member.removed_at.is_(None),
            _of_kind(staff),
        )
    )


def _of_kind(staff: bool) -> ColumnElement[bool]:
    return Member.partner_id.is_(None) if staff else Member.partner_id.is_not(None)


def _check_not_locked(member: Member, now: datetime) -> None:
    if member.locked_until is not None and member.locked_until > now:
        raise AccountLockedError(member.locked_until)


def _failed(member: Member, now: datetime) -> None:
    """Count a wrong attempt; the fifth in a row locks the account."""
    member.failed_signins += 1
    if member.failed_signins >= MAX_FAILURES:
        member.failed_signins = 0
        member.locked_until = now + LOCKOUT


def check_password(
    session: Session, email: str, password: str, now: datetime, *, staff: bool = False
) -> Started:
    """Step one. A right password starts a session that opens nothing until step two.

    The caller commits even on refusal (the failure count must stick): refusals are returned
    by raising only after the count is written to ``session``."""
    member = active_member(session, email, staff=staff)
    if member is None:
        credentials.spend_time_as_if_checking(password)
        raise _wrong()
    _check_not_locked(member, now)
    if not credentials.password_matches(member.password_hash, password):
        _failed(member, now)
        raise _wrong()
    return _start(session, member, now)


def _start(session: Session, member: Member, now: datetime) -> Started:
    token = secrets.token_urlsafe(32)
    started = WebSession(
        token_hash=hash_key(token),
        csrf_token=secrets.token_urlsafe(32),
        member_id=member.id,
        created_at=now,
        last_seen_at=now,
    )
    session.add(started)
    return Started(started, token)


def check_second_factor(
    session: Session,
    vault: Vault,
    token: str,
    code: str,
    now: datetime,
    lifetimes: Lifetimes,
    *,
    staff: bool = False,
) -> Started:
    """Step two: a TOTP code (each good once) or an unused recovery code. The half-signed-in
    session ends and a new one, with a new token, begins (no token lives across sign-in)."""
    found = current(session, token, now, lifetimes, verified=False, staff=staff)
    if found is None:
        raise SignInRefusedError("this sign-in has expired: start again")
    pending, member = found
    _check_not_locked(member, now)
    if not (_totp_ok(vault, member, code, now) or _recovery_ok(session, member, code, now)):
        _failed(member, now)
        raise _wrong()
    member.failed_signins = 0
    pending.ended_at = now
    started = _start(session, member, now)
    started.session.verified_at = now
    partner = session.get(Partner, member.partner_id) if member.partner_id else None
    audit.record(
        session,
        actor=invitations.actor_of(member),
        action="staff.sign_in" if staff else "member.sign_in",
        partner_public_id=partner.public_id if partner else None,
        subject=member.email,
    )
    return started


def authenticator_secret(vault: Vault, member: Member) -> str:
    """The member's TOTP secret (for checking a code; the demo prints its own)."""
    bound = invitations.totp_binding(member.email)
    return vault.open_bytes(member.totp_sealed, bound, member.totp_key_id).decode()


def _totp_ok(vault: Vault, member: Member, code: str, now: datetime) -> bool:
    secret = authenticator_secret(vault, member)
    step = credentials.totp_step(secret, code, now, after_step=member.totp_last_step)
    if step is None:
        return False
    member.totp_last_step = step
    return True


def _recovery_ok(session: Session, member: Member, code: str, now: datetime) -> bool:
    if len(code) > 40:
        return False
    used = session.execute(
        update(RecoveryCode)
        .where(
            RecoveryCode.member_id == member.id,
            RecoveryCode.code_hash == credentials.recovery_hash(code),
            RecoveryCode.used_at.is_(None),
        )
        .values(used_at=now)
    )
    return bool(used.rowcount)  # type: ignore[attr-defined]


def current(
    session: Session,
    token: str | None,
    now: datetime,
    lifetimes: Lifetimes,
    *,
    verified: bool = True,
    staff: bool = False,
) -> tuple[WebSession, Member] | None:
    """The live session of a cookie's token and its member, or None. ``verified``: past the
    second factor (every page but the second step asks for that). ``staff``: a staff member's
    (the console's); a partner member's session never opens the console, nor the reverse."""
    if not token or len(token) > 100:
        return None
    row = session.execute(
        select(WebSession, Member)
        .join(Member, Member.id == WebSession.member_id)
        .where(
            WebSession.token_hash == hash_key(token),
            WebSession.ended_at.is_(None),
            Member.removed_at.is_(None),
            _of_kind(staff),
        )
    ).first()
    if row is None:
        return None
    web, member = row
    if (web.verified_at is not None) != verified:
        return None
    if now - web.last_seen_at > lifetimes.idle or now - web.created_at > lifetimes.absolute:
        web.ended_at = now
        return None
    if now - web.last_seen_at >= SEEN_EVERY:
        web.last_seen_at = now
    return web, member


def sign_out(session: Session, session_id: int, now: datetime) -> None:
    session.execute(
        update(WebSession)
        .where(WebSession.id == session_id, WebSession.ended_at.is_(None))
        .values(ended_at=now)
    )


def end_all_sessions(session: Session, member_id: int, now: datetime) -> int:
    """End every session of a member at once (removal, a role change); how many ended."""
    ended = session.execute(
        update(WebSession)
        .where(WebSession.member_id == member_id, WebSession.ended_at.is_(None))
        .values(ended_at=now)
    )
    return int(ended.rowcount)  # type: ignore[attr-defined]
