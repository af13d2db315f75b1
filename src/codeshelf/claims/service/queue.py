"""Reading claims: the partner's list, the operator's triage queue (most urgent first, with the
console's filters), the queue's overview counts, and claims per batch."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.orm import Session

from codeshelf.claims.models import (
    CLAIM_PREFIX,
    OPEN_STATUSES,
    Channel,
    Claim,
    ClaimCode,
    ClaimStatus,
    Remedy,
)
from codeshelf.kit.clock import utcnow
from codeshelf.kit.errors import (
    InvalidCursorError,
    InvalidInputError,
)
from codeshelf.kit.ids import is_public_id
from codeshelf.partners import service as partners
from codeshelf.stock import service as stock


def list_claims(
    session: Session, partner_id: int, *, before: str | None, limit: int, status: str | None
) -> list[Claim]:
    """The partner's claims, newest first; ``before`` is the last claim id of the prior page."""
    query = select(Claim).where(Claim.partner_id == partner_id).order_by(Claim.id.desc())
    if before is not None:
        if not is_public_id(CLAIM_PREFIX, before):
            raise InvalidCursorError()
        position = session.scalar(
            select(Claim.id).where(Claim.public_id == before, Claim.partner_id == partner_id)
        )
        if position is None:
            raise InvalidCursorError()
        query = query.where(Claim.id < position)
    if status is not None:
        query = query.where(Claim.status == status)
    return list(session.scalars(query.limit(limit)))


def counts_by_status(session: Session, partner_ids: Collection[int]) -> dict[int, dict[str, int]]:
    """Each partner's claims counted by status (a status with none is absent)."""
    rows = session.execute(
        select(Claim.partner_id, Claim.status, func.count())
        .where(Claim.partner_id.in_(partner_ids))
        .group_by(Claim.partner_id, Claim.status)
    )
    found: dict[int, dict[str, int]] = {}
    for partner_id, status, count in rows:
        found.setdefault(partner_id, {})[status] = int(count)
    return found


def open_count(counts: dict[str, int]) -> int:
    """How many of these (``counts_by_status``) are open: they hold their codes."""
    return sum(count for status, count in counts.items() if status in OPEN_STATUSES)


def queue(
    session: Session,
    *,
    status: str | None = None,
    overdue: bool = False,
    due_within: timedelta | None = None,
    partner: str | None = None,
    channel: str | None = None,
    limit: int = 200,
) -> list[Claim]:
    """Open claims, most urgent first: overdue ones by deadline; then Channel.API claims before
    others (priority triage, policy section 5), each by deadline; claims waiting on the partner
    (no deadline) last.

    Filters: ``status`` (any status; default every open one), ``overdue`` (the deadline has
    passed), ``due_within`` (the deadline falls before now + this, overdue ones included),
    ``partner`` (a partner's public id) and ``channel`` (api or operator)."""
    now = utcnow()
    query = select(Claim)
    if status is not None:
        query = query.where(Claim.status == _known(status, ClaimStatus, "status"))
    else:
        query = query.where(Claim.status.in_(OPEN_STATUSES))
    if overdue:
        query = query.where(Claim.due_at < now)
    if due_within is not None:
        query = query.where(Claim.due_at < now + due_within)
    if partner is not None:
        query = query.where(Claim.partner_id == partners.get_partner(session, partner).id)
    if channel is not None:
        query = query.where(Claim.channel == _known(channel, Channel, "channel"))
    late = Claim.due_at < now
    query = query.order_by(
        Claim.due_at.is_(None),
        case((late, 0), else_=1),
        case((late, Claim.due_at), else_=None),  # the longest overdue first, whoever filed it
        Claim.priority,
        Claim.due_at,
        Claim.submitted_at,
        Claim.id,
    )
    return list(session.scalars(query.limit(limit)))


def _known(value: str, allowed: type[StrEnum], name: str) -> str:
    """``value`` if one of ``allowed``: a typo must not answer with an empty queue."""
    if value not in tuple(allowed):
        raise InvalidInputError(
            f"unknown {name} {value!r}: one of {', '.join(tuple(allowed))}",
            pointer=f"query:{name}",
        )
    return value


def is_overdue(claim: Claim, now: datetime | None = None) -> bool:
    return claim.due_at is not None and claim.due_at < (now or utcnow())


SOON = timedelta(hours=4)  # "due soon" on the overview
FILED_DAYS = 30  # the overview's chart of claims filed per day


@dataclass(frozen=True)
class QueueOverview:
    """The claims queue at a glance: what needs a person now, and how many claims arrive."""

    overdue: int  # open claims past their deadline
    due_soon: int  # open claims due within SOON, not yet overdue
    waiting_on_partner: int  # needs_info: no clock runs until the partner answers
    open: int  # every open claim
    filed_per_day: list[tuple[date, int]]  # the last FILED_DAYS days (UTC), oldest first

    @property
    def filed(self) -> int:
        return sum(count for _, count in self.filed_per_day)


def overview(session: Session, now: datetime | None = None) -> QueueOverview:
    """Counts for the console's overview: overdue, due within 4 hours (not yet overdue),
    waiting on the partner, open; and claims filed on each of the last 30 days (today
    included, by UTC date, days without claims as 0)."""
    now = now or utcnow()
    is_open = Claim.status.in_(OPEN_STATUSES)

    def count(*where: ColumnElement[bool]) -> int:
        return int(session.scalar(select(func.count()).select_from(Claim).where(*where)) or 0)

    first_day = now.date() - timedelta(days=FILED_DAYS - 1)
    since = datetime.combine(first_day, time(), tzinfo=UTC)
    filed = Counter(
        submitted.astimezone(UTC).date()
        for submitted in session.scalars(
            select(Claim.submitted_at).where(Claim.submitted_at >= since)
        )
    )
    return QueueOverview(
        overdue=count(is_open, Claim.due_at < now),
        due_soon=count(is_open, Claim.due_at >= now, Claim.due_at < now + SOON),
        waiting_on_partner=count(Claim.status == ClaimStatus.NEEDS_INFO),
        open=count(is_open),
        filed_per_day=[
            (day, filed[day]) for day in (first_day + timedelta(days=n) for n in range(FILED_DAYS))
        ],
    )


def batch_quality(session: Session) -> list[stock.BatchQuality]:
    """Per batch and supplier: what went out, what came back as claims, what was confirmed
    (the stock report, told which codes were claimed and which remedied)."""
    return stock.batch_quality(session, select(ClaimCode.code_id), select(Remedy.code_id))


def status_counts(session: Session) -> dict[str, int]:
    """Claims per status, every status listed (zero or not), for the metrics scrape."""
    by_status = select(Claim.status, func.count()).group_by(Claim.status)
    counts = {status: int(count) for status, count in session.execute(by_status)}
    return {status.value: int(counts.get(status, 0)) for status in ClaimStatus}


def overdue_count(session: Session, now: datetime) -> int:
    """Open claims past their deadline (as on the overview)."""
    overdue = select(func.count()).where(Claim.status.in_(OPEN_STATUSES), Claim.due_at < now)
    return int(session.scalar(overdue) or 0)
