"""Opening a partner account for a person: the partner, and an invitation for its first owner.

One function for every door that does it: the console's Partners page, an approved access
application, the CLI and the admin API.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from codeshelf.members.roles import Role
from codeshelf.members.service import invitations
from codeshelf.partners import service as partners
from codeshelf.partners.models import Partner


@dataclass(frozen=True)
class Opened:
    partner: Partner
    invitation: invitations.IssuedInvitation  # its link is for the owner, shown once


def open_partner(
    session: Session,
    name: str,
    owner_email: str,
    actor: str,
    now: datetime,
    rate_limit_per_minute: int | None = None,
) -> Opened:
    """A new partner (no API key yet: its owner makes them in the portal) and its owner's
    invitation. The e-mail is checked before anything is written."""
    owner_email = invitations.normal_email(owner_email)
    partner = partners.new_partner(session, name, rate_limit_per_minute, actor)
    invitation = invitations.invite(session, partner, owner_email, Role.OWNER, actor, now)
    return Opened(partner, invitation)
