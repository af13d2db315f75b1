"""The wholesaler's own staff: members with no partner, who sign in to the operator console.

The rules: admins manage the staff, an admin always remains, a removed member's sessions end
at once. The CLI acts as a staff member when told who (``codeshelf --as EMAIL …``), so its
decisions name a person in the audit log as the console's do.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from codeshelf.audit import service as audit
from codeshelf.kit.errors import ConflictError, InvalidInputError, NotFoundError
from codeshelf.members.models import Invitation, Member
from codeshelf.members.roles import StaffPermission, StaffRole, staff_can
from codeshelf.members.service import invitations, signin
from codeshelf.members.service.team import MemberNotFoundError, NotAllowedError


class LastAdminError(ConflictError):
    slug = "last-admin"


class StaffMemberNotFoundError(NotFoundError):
    slug = "staff-member-not-found"


def actor(member: Member) -> str:
    return invitations.actor_of(member)


def staff(session: Session) -> list[Member]:
    return list(
        session.scalars(
            select(Member)
            .where(Member.partner_id.is_(None), Member.removed_at.is_(None))
            .order_by(Member.email)
        )
    )


def by_email(session: Session, email: str) -> Member:
    """The active staff member with ``email``, or StaffMemberNotFoundError."""
    found = signin.active_member(session, email, staff=True)
    if found is None:
        raise StaffMemberNotFoundError(f"no staff member {email.strip().lower()!r}")
    return found


def names(session: Session) -> dict[str, str]:
    """Every person's e-mail by the actor the audit log names them with (staff and members,
    removed ones too: the log outlives them)."""
    rows = session.execute(select(Member.public_id, Member.partner_id, Member.email))
    return {
        f"{'staff' if partner_id is None else 'member'}:{public_id}": email
        for public_id, partner_id, email in rows
    }


def open_invitations(session: Session, now: datetime) -> list[Invitation]:
    return list(
        session.scalars(
            select(Invitation)
            .where(
                Invitation.partner_id.is_(None),
                Invitation.accepted_at.is_(None),
                Invitation.revoked_at.is_(None),
                Invitation.expires_at > now,
            )
            .order_by(Invitation.created_at)
        )
    )


def _check_admin(by: Member | None) -> str:
    """The actor to record; None is the CLI run by whoever holds the server (bootstrap)."""
    if by is None:
        return audit.OPERATOR_CLI
    if not staff_can(by.role, StaffPermission.STAFF):
        raise NotAllowedError("only staff admins manage the staff")
    return actor(by)


def invite(
    session: Session, by: Member | None, email: str, role: str, now: datetime
) -> invitations.IssuedInvitation:
    """An invitation to the staff (its link opens under /ops/invite/)."""
    return invitations.invite(session, None, email, role, _check_admin(by), now)


def _target(session: Session, member_public_id: str) -> Member:
    found = session.scalar(
        select(Member)
        .where(
            Member.public_id == member_public_id,
            Member.partner_id.is_(None),
            Member.removed_at.is_(None),
        )
        .with_for_update()
    )
    if found is None:
        raise MemberNotFoundError(f"no staff member {member_public_id}")
    return found


def _admins(session: Session) -> int:
    return int(
        session.scalar(
            select(func.count()).where(
                Member.partner_id.is_(None),
                Member.role == StaffRole.ADMIN,
                Member.removed_at.is_(None),
            )
        )
        or 0
    )


def _keep_an_admin(session: Session, target: Member) -> None:
    if target.role == StaffRole.ADMIN and _admins(session) <= 1:
        raise LastAdminError("the staff keeps at least one admin: make someone else admin first")


def change_role(session: Session, by: Member | None, member_public_id: str, role: str) -> Member:
    if role not in tuple(StaffRole):
        raise InvalidInputError(f"role must be one of {', '.join(StaffRole)}", pointer="#/role")
    who = _check_admin(by)
    target = _target(session, member_public_id)
    if role != StaffRole.ADMIN:
        _keep_an_admin(session, target)
    previous, target.role = target.role, role
    audit.record(
        session, actor=who, action="staff.role", subject=target.email,
        details={"from": previous, "to": role},
    )  # fmt: skip
    return target


def remove(session: Session, by: Member | None, member_public_id: str, now: datetime) -> Member:
    """Remove a staff member: their sessions end at once and they can no longer sign in."""
    who = _check_admin(by)
    target = _target(session, member_public_id)
    _keep_an_admin(session, target)
    target.removed_at = now
    ended = signin.end_all_sessions(session, target.id, now)
    audit.record(
        session, actor=who, action="staff.remove", subject=target.email,
        details={"sessions_ended": ended},
    )  # fmt: skip
    return target
