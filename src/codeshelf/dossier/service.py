"""The operator's view of partners: the list (money, open claims, keys, deposits waiting), and
one partner's detail (its limits, prices, keys, people and claims besides).

Each figure comes from the service of the domain that owns it; this module only puts them side
by side, so a rule (what is open, what a key shows) stays where it lives.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from codeshelf.catalog import service as catalog
from codeshelf.claims import service as claims
from codeshelf.kit.money import Money
from codeshelf.members.service import team
from codeshelf.partners import service as partners
from codeshelf.partners.models import Partner
from codeshelf.wallet import service as wallet


@dataclass(frozen=True)
class PartnerSummary:
    partner_id: str
    name: str
    created_at: datetime
    available: list[Money]  # per currency
    held: list[Money]  # set aside for pending orders, per currency
    open_claims: int
    active_keys: int  # live and sandbox keys not revoked
    pending_deposits: int  # waiting for a second person


@dataclass(frozen=True)
class KeyLine:
    key_id: str
    mode: str  # live, or test (the sandbox's)
    prefix: str  # the key's first characters, never the key
    created_at: datetime
    last_used_at: datetime | None  # to the minute
    revoked_at: datetime | None


@dataclass(frozen=True)
class PersonLine:
    member_id: str | None  # None: invited, not joined yet
    email: str
    role: str
    since: datetime  # joined, or invited
    invitation_expires_at: datetime | None = None


@dataclass(frozen=True)
class ReviewLimits:
    """The partner's own manual-review limits (None: the operator-wide default applies)."""

    quantity_over: int | None
    amount_over: Money | None


@dataclass(frozen=True)
class PartnerDetail:
    partner_id: str
    name: str
    created_at: datetime
    rate_limit_per_minute: int | None  # None: CODESHELF_RATE_LIMIT_PER_MINUTE
    review: ReviewLimits
    available: list[Money]
    held: list[Money]
    credit_limits: list[Money]  # wallets that may go below zero, and how far
    low_balance_alerts: list[Money]
    prices: list[catalog.PartnerPriceLine]
    keys: list[KeyLine]
    members: list[PersonLine]
    invitations: list[PersonLine]  # open ones
    claims: dict[str, int]  # by status
    open_claims: int
    pending_deposits: list[wallet.RequestedDeposit]


def partner_list(session: Session) -> list[PartnerSummary]:
    """Every live partner (sandbox twins belong to theirs), in the order they were created."""
    found = partners.live_partners(session)
    ids = [partner.id for partner in found]
    money = wallet.balances_of_partners(session, ids)
    claim_counts = claims.counts_by_status(session, ids)
    keys = partners.active_key_counts(session, ids)
    waiting: dict[str, int] = {}
    for request in wallet.pending_deposits(session):
        waiting[request.partner_id] = waiting.get(request.partner_id, 0) + 1
    empty = wallet.Balances([], [])
    return [
        PartnerSummary(
            partner_id=partner.public_id,
            name=partner.name,
            created_at=partner.created_at,
            available=money.get(partner.id, empty).available,
            held=money.get(partner.id, empty).held,
            open_claims=claims.open_count(claim_counts.get(partner.id, {})),
            active_keys=keys.get(partner.id, 0),
            pending_deposits=waiting.get(partner.public_id, 0),
        )
        for partner in found
    ]


def partner_detail(session: Session, partner_public_id: str, now: datetime) -> PartnerDetail:
    """One partner's everything the operator looks at (PartnerNotFoundError for an unknown id;
    a sandbox twin's id answers with its own, mostly empty, detail)."""
    partner = partners.get_partner(session, partner_public_id)
    money = wallet.all_balances(session, partner.id)
    counts = claims.counts_by_status(session, [partner.id]).get(partner.id, {})
    return PartnerDetail(
        partner_id=partner.public_id,
        name=partner.name,
        created_at=partner.created_at,
        rate_limit_per_minute=partner.rate_limit_per_minute,
        review=_review_limits(partner),
        available=money.available,
        held=money.held,
        credit_limits=wallet.credit_limits(session, partner.id),
        low_balance_alerts=wallet.low_balance_alerts(session, partner.id),
        prices=catalog.partner_prices(session, partner),
        keys=[
            KeyLine(k.public_id, k.mode, k.prefix, k.created_at, k.last_used_at, k.revoked_at)
            for k in partners.list_keys(session, partner.public_id)
        ],
        members=[
            PersonLine(m.public_id, m.email, m.role, m.created_at)
            for m in team.members(session, partner.id)
        ],
        invitations=[
            PersonLine(None, i.email, i.role, i.created_at, i.expires_at)
            for i in team.open_invitations(session, partner.id, now)
        ],
        claims=dict(sorted(counts.items())),
        open_claims=claims.open_count(counts),
        pending_deposits=wallet.pending_deposits(session, partner.id),
    )


def _review_limits(partner: Partner) -> ReviewLimits:
    amount = None
    if partner.review_amount_over_minor is not None and partner.review_amount_currency:
        amount = Money(partner.review_amount_over_minor, partner.review_amount_currency)
    return ReviewLimits(partner.review_quantity_over, amount)
