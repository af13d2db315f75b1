"""Reading claims: the partner's list, the operator's triage queue (most urgent first), each
code's history beside the evidence, and claims per batch."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from codeshelf.audit import service as audit
from codeshelf.claims.models import (
    CLAIM_PREFIX,
    OPEN_STATUSES,
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
from codeshelf.orders.models import Order
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
    session: Session, *, status: str | None = None, overdue: bool = False, limit: int = 200
) -> list[Claim]:
    """Open claims, most urgent first: overdue ones by deadline; then Channel.API claims before
    others (priority triage, policy section 5), each by deadline; claims waiting on the partner
    (no deadline) last. ``overdue`` keeps those whose deadline has passed."""
    now = utcnow()
    query = select(Claim)
    if status is not None:
        if status not in tuple(ClaimStatus):
            raise InvalidInputError(
                f"unknown status {status!r}: one of {', '.join(tuple(ClaimStatus))}",
                pointer="query:status",
            )
        query = query.where(Claim.status == status)
    else:
        query = query.where(Claim.status.in_(OPEN_STATUSES))
    if overdue:
        query = query.where(Claim.due_at < now)
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


def is_overdue(claim: Claim, now: datetime | None = None) -> bool:
    return claim.due_at is not None and claim.due_at < (now or utcnow())


@dataclass(frozen=True)
class CodeHistory:
    masked: str
    sku: str
    batch: str
    supplier: str | None
    imported_at: datetime
    delivered_at: datetime | None
    state: str
    retrievals: int  # how often the order's codes were revealed
    first_fetched_at: datetime | None
    earlier_claims_on_batch: list[str]
    earlier_claims_on_code: list[str]  # this very code, claimed before (rejected, cancelled)


def history(session: Session, claim: Claim) -> list[CodeHistory]:
    """For each claimed code: where it came from, when it went out, what else went wrong with
    its batch. What an operator needs beside the evidence to decide."""
    order = session.get_one(Order, claim.order_id)
    retrievals, first_fetched_at = audit.occurrences(session, "codes.reveal", order.public_id)
    origins = stock.provenance(session, [claimed.code_id for claimed in claim.codes])
    result = []
    for claimed in claim.codes:
        origin = origins[claimed.code_id]
        others = session.scalars(
            select(Claim.public_id)
            .join(ClaimCode, ClaimCode.claim_id == Claim.id)
            .where(
                ClaimCode.code_id.in_(stock.codes_of_batch(origin.batch_id)),
                Claim.id != claim.id,
            )
            .distinct()
        ).all()
        same_code = session.scalars(
            select(Claim.public_id)
            .join(ClaimCode, ClaimCode.claim_id == Claim.id)
            .where(ClaimCode.code_id == claimed.code_id, Claim.id != claim.id)
            .order_by(Claim.id)
        ).all()
        result.append(
            CodeHistory(
                masked=claimed.masked,
                sku=origin.sku,
                batch=origin.batch,
                supplier=origin.supplier,
                imported_at=origin.imported_at,
                delivered_at=origin.delivered_at,
                state=origin.state,
                retrievals=retrievals,
                first_fetched_at=first_fetched_at,
                earlier_claims_on_batch=sorted(others),
                earlier_claims_on_code=list(same_code),
            )
        )
    return result


def batch_quality(session: Session) -> list[stock.BatchQuality]:
    """Per batch and supplier: what went out, what came back as claims, what was confirmed
    (the stock report, told which codes were claimed and which remedied)."""
    return stock.batch_quality(session, select(ClaimCode.code_id), select(Remedy.code_id))
