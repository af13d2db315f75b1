"""A partner's team: who is in it, their roles, and removing them. The rules: owners and
admins manage the team, only owners make or unmake owners, an owner always remains, and a
removed member's sessions end at once."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from codeshelf.audit import service as audit
from codeshelf.kit.errors import ConflictError, DomainError, InvalidInputError, NotFoundError
from codeshelf.members.models import Invitation, Member
from codeshelf.members.roles import Permission, Role, can
from codeshelf.members.service import invitations, signin
from codeshelf.partners.models import Partner


class NotAllowedError(DomainError):
    slug = "not-allowed"


class LastOwnerError(ConflictError):
    slug = "last-owner"


class MemberNotFoundError(NotFoundError):
    slug = "member-not-found"


def members(session: Session, partner_id: int) -> list[Member]:
    return list(
        session.scalars(
            select(Member)
            .where(Member.partner_id == partner_id, Member.removed_at.is_(None))
            .order_by(Member.email)
        )
    )


def open_invitations(session: Session, partner_id: int, now: datetime) -> list[Invitation]:
    return list(
        session.scalars(
            select(Invitation)
            .where(
                Invitation.partner_id == partner_id,
                Invitation.accepted_at.is_(None),
                Invitation.revoked_at.is_(None),
                Invitation.expires_at > now,
            )
            .order_by(Invitation.created_at)
        )
    )


def _check_may_manage(actor: Member, role: str) -> None:
    if not can(actor.role, Permission.TEAM):
        raise NotAllowedError("only owners and admins manage the team")
    if role == Role.OWNER and not can(actor.role, Permission.OWNERS):
        raise NotAllowedError("only an owner may make or unmake owners")


def invite(
    session: Session, actor: Member, partner: Partner, email: str, role: str, now: datetime
) -> invitations.IssuedInvitation:
    """An invitation from the Team page (the link is the inviter's to pass on)."""
    _check_may_manage(actor, role)
    return invitations.invite(session, partner, email, role, invitations.actor_of(actor), now)


def _member(session: Session, actor: Member, member_public_id: str) -> Member:
    found = session.scalar(
        select(Member)
        .where(
            Member.public_id == member_public_id,
            Member.partner_id == actor.partner_id,
            Member.removed_at.is_(None),
        )
        .with_for_update()
    )
    if found is None:
        raise MemberNotFoundError(f"no member {member_public_id}")
    return found


def _owners(session: Session, partner_id: int) -> int:
    return int(
        session.scalar(
            select(func.count()).where(
                Member.partner_id == partner_id,
                Member.role == Role.OWNER,
                Member.removed_at.is_(None),
            )
        )
        or 0
    )


def change_role(
    session: Session, actor: Member, partner: Partner, member_public_id: str, role: str
) -> Member:
    """Give a member another role; it applies from their next page (roles are read each time)."""
    if role not in tuple(Role):
        raise InvalidInputError(f"role must be one of {', '.join(Role)}", pointer="#/role")
    target = _member(session, actor, member_public_id)
    _check_may_manage(actor, target.role)
    _check_may_manage(actor, role)
    if target.role == Role.OWNER and role != Role.OWNER and _owners(session, partner.id) <= 1:
        raise LastOwnerError("a team keeps at least one owner: make someone else owner first")
    previous, target.role = target.role, role
    _record(session, actor, partner, "member.role", target, {"from": previous, "to": role})
    return target


def remove(
    session: Session, actor: Member, partner: Partner, member_public_id: str, now: datetime
) -> Member:
    """Remove a member: their sessions end at once and they can no longer sign in."""
    target = _member(session, actor, member_public_id)
    _check_may_manage(actor, target.role)
    if target.role == Role.OWNER and _owners(session, partner.id) <= 1:
        raise LastOwnerError("a team keeps at least one owner: make someone else owner first")
    target.removed_at = now
    ended = signin.end_all_sessions(session, target.id, now)
    _record(session, actor, partner, "member.remove", target, {"sessions_ended": ended})
    return target


def _record(
    session: Session,
    actor: Member,
    partner: Partner,
    action: str,
    target: Member,
    details: dict[str, object],
) -> None:
    audit.record(
        session,
        actor=invitations.actor_of(actor),
        action=action,
        partner_public_id=partner.public_id,
        subject=target.email,
        details=details,
    )
