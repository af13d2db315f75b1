"""Carrying out remedies: a refund of what was paid for a code, or a replacement code allocated
like any order. A replacement short of stock waits, and the claim with it, until stock arrives
or the partner switches to a refund. A code approved while others of its claim are still
undecided gets its remedy at once too; the claim is resolved once it is approved (every code
decided) and nothing waits."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from codeshelf.claims.models import (
    OPEN_STATUSES,
    Claim,
    ClaimCode,
    ClaimStatus,
    Remedy,
    RemedyKind,
    RemedyState,
)
from codeshelf.claims.service.errors import ClaimStateError, ReplacementWaitingError
from codeshelf.claims.service.inputs import Actor
from codeshelf.claims.service.lifecycle import (
    close,
    locked_claim,
    move,
    notify,
    position_of,
    record_decision,
    remedies_of,
)
from codeshelf.kit.clock import utcnow
from codeshelf.kit.money import Money
from codeshelf.orders import service as orders
from codeshelf.orders.models import Order, OrderItem
from codeshelf.partners.models import Partner
from codeshelf.stock.service import InsufficientStockError
from codeshelf.wallet import service as wallet


def fulfil(session: Session, claim: Claim, actor: Actor) -> bool:
    """Carry out the claim's waiting remedies; resolve an approved claim when none is left
    waiting (a claim with codes still undecided is not resolved).

    Refunds always succeed. Replacements are allocated together, all or none: if stock is
    short they keep waiting. Returns True when the claim is resolved.
    """
    now = utcnow()
    waiting = [remedy for remedy in remedies_of(claim) if remedy.state == RemedyState.WAITING]
    partner = session.get_one(Partner, claim.partner_id)
    order = session.get_one(Order, claim.order_id)
    claimed_by_id = {claimed.id: claimed for claimed in claim.codes}
    for remedy in waiting:
        if remedy.kind == RemedyKind.REFUND:
            _refund(session, claim, partner, order, remedy, claimed_by_id[remedy.claim_code_id])
            remedy.completed_at = now
    replacements = [r for r in waiting if r.kind == RemedyKind.REPLACEMENT]
    if replacements:
        _replace(session, claim, order, replacements, claimed_by_id, now)
    if claim.status != ClaimStatus.APPROVED or any(
        remedy.state == RemedyState.WAITING for remedy in remedies_of(claim)
    ):
        return False
    move(claim, ClaimStatus.RESOLVED)
    claim.resolved_at = now
    close(claim, now)
    record_decision(session, claim, actor, "resolve", None)
    return True


def _refund(
    session: Session,
    claim: Claim,
    partner: Partner,
    order: Order,
    remedy: Remedy,
    claimed: ClaimCode,
) -> None:
    item = session.get_one(OrderItem, claimed.order_item_id)
    paid = Money(item.unit_price_minor, order.currency)
    if paid.minor > 0:
        txn = wallet.refund(
            session,
            partner,
            order.id,
            paid,
            f"refund:{claim.public_id}:{position_of(claim, claimed)}",
        )
        remedy.ledger_transaction_id = txn.id
    else:
        # A free replacement code that failed again: nothing was paid, so it is replaced.
        remedy.kind = RemedyKind.REPLACEMENT
        return
    remedy.amount_minor = paid.minor
    remedy.currency = paid.currency
    remedy.state = RemedyState.DONE


def _replace(
    session: Session,
    claim: Claim,
    order: Order,
    replacements: list[Remedy],
    claimed_by_id: dict[int, ClaimCode],
    now: datetime,
) -> None:
    product_of_item = {item.id: item.product_id for item in order.items}
    quantities = Counter(
        product_of_item[claimed_by_id[remedy.claim_code_id].order_item_id]
        for remedy in replacements
    )
    try:
        with session.begin_nested():
            replacement = orders.place_replacement(
                session, claim.partner_id, order.currency, dict(quantities)
            )
    except InsufficientStockError:
        return  # the claim waits in approved until stock arrives or the remedy is switched
    for remedy in replacements:
        remedy.replacement_order_id = replacement.id
        remedy.state = RemedyState.DONE
        remedy.completed_at = now


def resolve(session: Session, claim_public_id: str, actor: Actor) -> Claim:
    """Carry out what an approved claim still waits for; refused while stock is short."""
    claim = locked_claim(session, claim_public_id)
    if claim.status != ClaimStatus.APPROVED:
        raise ClaimStateError(f"claim {claim.public_id} is {claim.status}, not approved")
    if not fulfil(session, claim, actor):
        raise ReplacementWaitingError(
            f"claim {claim.public_id}: {_waiting_count(claim)} replacement code(s) wait for "
            "stock; import stock or switch the claim to a refund"
        )
    notify(session, claim)
    return claim


def fulfil_waiting(session: Session, actor: Actor) -> list[str]:
    """Try every claim with a replacement waiting for stock, the longest waiting first (its
    oldest waiting remedy): approved claims, and claims whose approved codes wait while others
    are still undecided.

    Returns the ids of the claims resolved. Run after stock arrives (``stock import`` does).
    """
    waiting_since = (
        select(ClaimCode.claim_id, func.min(Remedy.created_at).label("since"))
        .join(Remedy, Remedy.claim_code_id == ClaimCode.id)
        .where(Remedy.state == RemedyState.WAITING)
        .group_by(ClaimCode.claim_id)
        .subquery()
    )
    waiting = session.scalars(
        select(Claim.public_id)
        .join(waiting_since, waiting_since.c.claim_id == Claim.id)
        .order_by(waiting_since.c.since, Claim.id)
    ).all()
    resolved = []
    for claim_public_id in waiting:
        claim = locked_claim(session, claim_public_id)
        before = _waiting_count(claim)
        if claim.status not in OPEN_STATUSES or not before:
            continue
        if fulfil(session, claim, actor):
            resolved.append(claim.public_id)
        if _waiting_count(claim) < before:
            notify(session, claim)
    return resolved


def _waiting_count(claim: Claim) -> int:
    return sum(1 for remedy in remedies_of(claim) if remedy.state == RemedyState.WAITING)
