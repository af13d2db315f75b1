"""Four eyes on deposits: above ``CODESHELF_DEPOSIT_APPROVAL_OVER`` for its currency, a deposit
is a pending request that a second person, not the one who asked, approves (and only then is
the wallet credited, by the same ledger moves as any deposit) or declines with a note.

A reference names one deposit, whichever way it goes: a pending or declined request's reference
cannot be deposited directly, a deposited reference cannot be filed again, and asking twice for
the same deposit returns what the first ask did. A request is decided once: its row is locked
for the decision, so of two approvals at once exactly one credits.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from codeshelf.audit import service as audit
from codeshelf.kit.errors import ConflictError, DomainError, InvalidInputError, NotFoundError
from codeshelf.kit.ids import public_id
from codeshelf.kit.money import Money
from codeshelf.partners.models import Partner
from codeshelf.wallet.models import (
    DEPOSIT_REQUEST_PREFIX,
    DepositRequest,
    DepositStatus,
    LedgerTransaction,
)
from codeshelf.wallet.service.moves import (
    DepositConflictError,
    DepositResult,
    checked_reference,
    credit,
    deposit,
)

MAX_NOTE = 500


class FourEyesError(DomainError):
    """The person who asked for a deposit cannot decide it (403: another person may)."""

    slug = "four-eyes"


class DepositRequestNotFoundError(NotFoundError):
    slug = "deposit-request-not-found"


class DepositDecidedError(ConflictError):
    slug = "deposit-already-decided"


@dataclass(frozen=True)
class RequestedDeposit:
    """A deposit request as the doors show it (public ids only)."""

    id: str
    partner_id: str
    partner_name: str
    amount: Money
    reference: str
    status: str
    requested_by: str  # actors, as the audit log names them
    requested_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    note: str | None  # why it was declined
    transaction_id: str | None  # the deposit's ledger transaction, once approved


@dataclass(frozen=True)
class DepositOutcome:
    """What asking for (or approving) a deposit did: credited the wallet (``credited``), or
    left a request waiting for a second person (``request`` pending). ``created`` is false
    when it only repeated what an earlier call with the same reference had done."""

    credited: DepositResult | None
    request: RequestedDeposit | None
    created: bool

    @property
    def pending(self) -> bool:
        return self.credited is None


def needs_second_person(money: Money, thresholds: Mapping[str, Money]) -> bool:
    """Above its currency's threshold; at it, or in a currency with none, a deposit is direct."""
    threshold = thresholds.get(money.currency)
    return threshold is not None and money.minor > threshold.minor


def ask_deposit(
    session: Session,
    partner: Partner,
    money: Money,
    reference: str,
    actor: str,
    thresholds: Mapping[str, Money],
    now: datetime,
) -> DepositOutcome:
    """Credit ``money`` at once (exactly ``deposit``) unless it needs a second person, else file
    a pending request asked by ``actor``. Idempotent on ``reference`` either way."""
    reference = checked_reference(reference)
    if money.minor <= 0:
        raise InvalidInputError("a deposit must be positive", pointer="#/amount")
    existing = _by_reference(session, reference)
    if existing is not None:
        return _asked_again(session, existing, partner, money, actor)
    if not needs_second_person(money, thresholds) or _deposited(session, reference):
        result = deposit(session, partner, money, reference, actor)
        return DepositOutcome(result, None, result.created)
    request = DepositRequest(
        public_id=public_id(DEPOSIT_REQUEST_PREFIX),
        partner_id=partner.id,
        amount_minor=money.minor,
        currency=money.currency,
        reference=reference,
        status=DepositStatus.PENDING,
        requested_by=actor,
        requested_at=now,
    )
    try:
        with session.begin_nested():
            session.add(request)
    except IntegrityError:  # the same reference filed at this very moment: that one counts
        found = _by_reference(session, reference)
        assert found is not None  # the insert just collided with it
        return _asked_again(session, found, partner, money, actor)
    audit.record(
        session,
        actor=actor,
        action="wallet.deposit_request",
        partner_public_id=partner.public_id,
        subject=reference,
        details={**money.as_json(), "request_id": request.public_id},
    )
    return DepositOutcome(None, _view(session, request, partner), True)


def _asked_again(
    session: Session, request: DepositRequest, partner: Partner, money: Money, actor: str
) -> DepositOutcome:
    """The same deposit asked again: what became of it; another deposit under its reference
    (or one declined) is refused."""
    same = (request.partner_id, request.amount_minor, request.currency) == (
        partner.id,
        money.minor,
        money.currency,
    )
    if not same or request.status == DepositStatus.DECLINED:
        raise DepositConflictError(
            f"reference {request.reference} belongs to deposit request {request.public_id} "
            f"({request.status}) for {Money(request.amount_minor, request.currency)}"
        )
    if request.status == DepositStatus.APPROVED:  # the ledger has it: replay the deposit
        result = deposit(session, partner, money, request.reference, actor)
        return DepositOutcome(result, _view(session, request, partner), False)
    return DepositOutcome(None, _view(session, request, partner), False)


def approve_deposit(session: Session, request_id: str, actor: str, now: datetime) -> DepositOutcome:
    """Credit a pending request's wallet, as ``actor`` (not the one who asked: FourEyesError),
    through the same ledger moves as ``deposit``."""
    request = _for_decision(session, request_id, actor)
    partner = session.get_one(Partner, request.partner_id)
    money = Money(request.amount_minor, request.currency)
    result = credit(session, partner, money, request.reference, actor)
    if not result.created:  # deposited directly while the request was filed (a race)
        raise DepositConflictError(
            f"reference {request.reference} was already deposited; decline {request_id}"
        )
    request.status = DepositStatus.APPROVED
    request.transaction_id = result.transaction.id
    request.decided_by, request.decided_at = actor, now
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="wallet.deposit_approve",
        partner_public_id=partner.public_id,
        subject=request.reference,
        details={
            **money.as_json(),
            "request_id": request.public_id,
            "requested_by": request.requested_by,
            "transaction_id": result.transaction.public_id,
        },
    )
    return DepositOutcome(result, _view(session, request, partner), True)


def decline_deposit(
    session: Session, request_id: str, actor: str, note: str, now: datetime
) -> RequestedDeposit:
    """Decline a pending request with a note saying why, as ``actor`` (not the one who asked):
    nothing is credited, and its reference stays used."""
    note = note.strip()
    if not note or len(note) > MAX_NOTE or not note.isprintable():
        raise InvalidInputError(
            f"a note of 1 to {MAX_NOTE} printable characters says why", pointer="#/note"
        )
    request = _for_decision(session, request_id, actor)
    request.status = DepositStatus.DECLINED
    request.decided_by, request.decided_at, request.note = actor, now, note
    session.flush()
    partner = session.get_one(Partner, request.partner_id)
    audit.record(
        session,
        actor=actor,
        action="wallet.deposit_decline",
        partner_public_id=partner.public_id,
        subject=request.reference,
        details={
            **Money(request.amount_minor, request.currency).as_json(),
            "request_id": request.public_id,
            "requested_by": request.requested_by,
            "note": note,
        },
    )
    return _view(session, request, partner)


def _for_decision(session: Session, request_id: str, actor: str) -> DepositRequest:
    """The pending request, locked until the decision commits (a second decision waits, then
    finds it decided)."""
    found = session.scalar(
        select(DepositRequest)
        .where(DepositRequest.public_id == request_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if found is None:
        raise DepositRequestNotFoundError(f"no deposit request {request_id}")
    if found.status != DepositStatus.PENDING:
        raise DepositDecidedError(
            f"deposit request {request_id} was already {found.status} by {found.decided_by}"
        )
    if found.requested_by == actor:
        raise FourEyesError(
            f"{actor} asked for deposit {request_id}: a second person must approve or decline it"
        )
    return found


def deposit_requests(
    session: Session,
    *,
    status: str | None = None,
    partner_id: int | None = None,
    limit: int = 200,
) -> list[RequestedDeposit]:
    """Deposit requests, newest first (pending ones oldest first: a queue), optionally of one
    status or one partner."""
    query = _listed()
    if status is not None:
        query = query.where(DepositRequest.status == status)
    if partner_id is not None:
        query = query.where(DepositRequest.partner_id == partner_id)
    order = DepositRequest.id.asc() if status == DepositStatus.PENDING else DepositRequest.id.desc()
    rows = session.execute(query.order_by(order).limit(limit))
    return [_view_of(request, partner, txn) for request, partner, txn in rows]


def pending_deposits(session: Session, partner_id: int | None = None) -> list[RequestedDeposit]:
    """The deposits waiting for a second person, oldest first."""
    return deposit_requests(session, status=DepositStatus.PENDING, partner_id=partner_id)


def get_deposit_request(session: Session, request_id: str) -> RequestedDeposit:
    row = session.execute(_listed().where(DepositRequest.public_id == request_id)).first()
    if row is None:
        raise DepositRequestNotFoundError(f"no deposit request {request_id}")
    return _view_of(*row)


def _listed() -> Select[DepositRequest, Partner, str]:
    """Each request with its partner and its ledger transaction's public id (None until it is
    approved)."""
    return (
        select(DepositRequest, Partner, LedgerTransaction.public_id)
        .join(Partner, Partner.id == DepositRequest.partner_id)
        .outerjoin(LedgerTransaction, LedgerTransaction.id == DepositRequest.transaction_id)
    )


def _by_reference(session: Session, reference: str) -> DepositRequest | None:
    return session.scalar(select(DepositRequest).where(DepositRequest.reference == reference))


def _deposited(session: Session, reference: str) -> bool:
    found = session.scalar(
        select(LedgerTransaction.id).where(LedgerTransaction.reference == reference)
    )
    return found is not None


def _view(session: Session, request: DepositRequest, partner: Partner) -> RequestedDeposit:
    txn = session.get(LedgerTransaction, request.transaction_id) if request.transaction_id else None
    return _view_of(request, partner, txn.public_id if txn else None)


def _view_of(request: DepositRequest, partner: Partner, txn: str | None) -> RequestedDeposit:
    return RequestedDeposit(
        id=request.public_id,
        partner_id=partner.public_id,
        partner_name=partner.name,
        amount=Money(request.amount_minor, request.currency),
        reference=request.reference,
        status=request.status,
        requested_by=request.requested_by,
        requested_at=request.requested_at,
        decided_by=request.decided_by,
        decided_at=request.decided_at,
        note=request.note,
        transaction_id=txn,
    )
