"""TOTP secrets after a secret rotation: members' and pending invitations' (the only values the
members domain seals; passwords, recovery codes, links and sessions are hashes, which no key
touches), sealed again under the current key a batch at a time while people sign in.

Each UPDATE names the ciphertext it read: a member enrolling again meanwhile keeps the new
secret, and the row is left for the next batch.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from codeshelf.kit.rotation import KeyCounts, Resealed, classify, reseal_value
from codeshelf.kit.vault import Vault
from codeshelf.members.models import Invitation, Member
from codeshelf.members.service.invitations import totp_binding


def member_keys(session: Session, vault: Vault) -> KeyCounts:
    """How many members' TOTP secrets are under which key."""
    rows = session.execute(select(Member.totp_key_id, func.count()).group_by(Member.totp_key_id))
    return classify(vault, [(key_id, count) for key_id, count in rows])


def invitation_keys(session: Session, vault: Vault) -> KeyCounts:
    """How many invitations' pending TOTP secrets are under which key."""
    key = Invitation.pending_totp_key_id
    rows = session.execute(select(key, func.count()).where(key.is_not(None)).group_by(key))
    return classify(vault, [(key_id, count) for key_id, count in rows])


def reseal_members(session: Session, vault: Vault, *, after: int, limit: int) -> Resealed:
    """Members' TOTP secrets: up to ``limit`` under a previous key, ids above ``after``."""
    return _reseal(
        session, vault, Member, Member.totp_sealed, Member.totp_key_id, after=after, limit=limit
    )


def reseal_invitations(session: Session, vault: Vault, *, after: int, limit: int) -> Resealed:
    """Invitations' pending TOTP secrets (chosen, not confirmed yet), as ``reseal_members``."""
    return _reseal(
        session,
        vault,
        Invitation,
        Invitation.pending_totp_sealed,
        Invitation.pending_totp_key_id,
        after=after,
        limit=limit,
    )


def _reseal(
    session: Session,
    vault: Vault,
    model: type[Member] | type[Invitation],
    sealed_column: Any,
    key_column: Any,
    *,
    after: int,
    limit: int,
) -> Resealed:
    previous = sorted(vault.previous_key_ids)
    if not previous:
        return Resealed(0, 0, None)
    rows = session.execute(
        select(model.id, model.email, sealed_column, key_column)
        .where(model.id > after, key_column.in_(previous))
        .order_by(model.id)
        .limit(limit)
    ).all()
    resealed = 0
    for row_id, email, sealed, key_id in rows:
        new_sealed, new_key = reseal_value(vault, sealed, totp_binding(email), key_id)
        moved = session.execute(
            update(model)
            .where(model.id == row_id, sealed_column == sealed)
            .values({sealed_column: new_sealed, key_column: new_key})
            .execution_options(synchronize_session=False)
        )
        resealed += int(moved.rowcount)  # type: ignore[attr-defined]
    return Resealed(len(rows), resealed, int(rows[-1][0]) if rows else None)
