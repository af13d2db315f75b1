"""The partner's side of a claim: filing it (refused whole, and nothing kept, when any code
cannot be claimed), adding evidence, choosing the remedy, cancelling."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from codeshelf.audit import service as audit
from codeshelf.catalog.codes import mask
from codeshelf.catalog.models import Product
from codeshelf.claims import policy as rules
from codeshelf.claims.evidence import EvidenceStore, Screenshot
from codeshelf.claims.models import (
    CLAIM_PREFIX,
    OPEN_STATUSES,
    PRIORITY,
    Channel,
    Claim,
    ClaimCode,
    ClaimEvidence,
    ClaimStatus,
    Remedy,
    RemedyKind,
    RemedyState,
)
from codeshelf.claims.service.errors import (
    ClaimAlreadyOpenError,
    ClaimStateError,
    ClaimWindowClosedError,
    CodeAlreadyRemediedError,
    CodeNotOnOrderError,
)
from codeshelf.claims.service.evaluation import (
    Evaluation,
    JudgedCode,
    check_error_code,
    check_problem,
    evaluate,
    find_code,
    normalize_region,
    refuse_impossible_evidence,
    rejudge,
)
from codeshelf.claims.service.inputs import (
    MAX_SCREENSHOTS,
    Actor,
    ClaimInput,
    CodeClaimInput,
    EvidenceInput,
)
from codeshelf.claims.service.lifecycle import (
    audit_who,
    close,
    locked_claim,
    move,
    notify,
    position_of,
    remedies_of,
)
from codeshelf.claims.service.remedies import fulfil
from codeshelf.kit.clock import utcnow
from codeshelf.kit.errors import (
    DomainError,
    InvalidInputError,
)
from codeshelf.kit.ids import public_id
from codeshelf.kit.vault import Vault
from codeshelf.orders.models import Order, OrderKind
from codeshelf.partners.models import Partner
from codeshelf.stock import service as stock


def file_claim(
    session: Session,
    vault: Vault,
    store: EvidenceStore,
    partner: Partner,
    data: ClaimInput,
    *,
    channel: str = Channel.API,
    actor: Actor | None = None,
) -> Claim:
    """File a claim; refused whole (and nothing kept) when any code cannot be claimed."""
    if data.remedy not in tuple(RemedyKind):
        raise InvalidInputError(
            f"remedy must be one of {', '.join(tuple(RemedyKind))}", pointer="#/remedy"
        )
    now = utcnow()
    evaluation = evaluate(session, vault, partner.id, data, now)
    if data.remedy == RemedyKind.REFUND and evaluation.order.kind == OrderKind.REPLACEMENT:
        raise InvalidInputError(
            "codes sent as replacements are replaced again, not refunded: choose replacement",
            pointer="#/remedy",
        )
    _lock_codes(session, [judged.code.id for judged in evaluation.codes])
    refusal = filing_refusal(session, evaluation)
    if refusal is not None:
        raise refusal
    sla = evaluation.policy.sla
    claim = Claim(
        public_id=public_id(CLAIM_PREFIX),
        partner_id=partner.id,
        order_id=evaluation.order.id,
        status=ClaimStatus.SUBMITTED,
        channel=channel,
        priority=PRIORITY[channel],
        policy_version=evaluation.policy.version,
        remedy=data.remedy,
        problem=data.problem,
        account_region=evaluation.codes[0].facts.account_region,
        attempted_at=data.redemption.attempted_at,
        error_code=data.redemption.error_code,
        exposed_publicly=bool(data.redemption.exposed_publicly),
        description=data.description,
        submitted_at=now,
        triage_due_at=now + sla.triage,
        due_at=now + sla.triage,
        created_at=now,
        updated_at=now,
    )
    claim.codes = [_claim_code(judged) for judged in evaluation.codes]
    try:
        with session.begin_nested():
            session.add(claim)
    except IntegrityError:
        raise _already_open(session, evaluation) from None
    _store_screenshots(session, store, claim, data.screenshots)
    audit.record(
        session,
        **audit_who(actor or Actor(f"partner:{partner.public_id}", partner.public_id)),
        action="claim.file",
        subject=claim.public_id,
        count=len(claim.codes),
        details={"order": evaluation.order.public_id, "channel": channel},
    )
    notify(session, claim)
    return claim


def _claim_code(judged: JudgedCode) -> ClaimCode:
    return ClaimCode(
        code_id=judged.code.id,
        order_item_id=judged.item.id,
        open=True,
        problem=judged.facts.problem,
        code_region=judged.facts.code_region,
        error_code=judged.request.error_code,
        masked=mask(judged.code.last4),
        verdict=judged.verdict.verdict,
        classification=judged.verdict.classification,
        rule=judged.verdict.rule,
        missing=list(judged.verdict.missing),
    )


def _lock_codes(session: Session, code_ids: list[int]) -> None:
    """Lock the claimed codes' rows, in id order, until commit (PostgreSQL).

    An approval voids codes, records their remedies and closes its claim in one transaction;
    holding the codes makes the checks below see all of that or none of it, and concurrent
    filings on overlapping codes queue instead of deadlocking.
    """
    stock.lock_codes(session, code_ids)


def filing_refusal(session: Session, evaluation: Evaluation) -> DomainError | None:
    """Why filing this claim would be refused (the window, a remedied or claimed code), if so."""
    if evaluation.window_closed:
        delivered_at = evaluation.order.delivered_at
        assert delivered_at is not None  # evaluate() refuses undelivered orders
        deadline = delivered_at + evaluation.policy.window
        return ClaimWindowClosedError(
            f"order {evaluation.order.public_id} was delivered more than 7 days ago; claims "
            f"closed at {deadline.isoformat()}",
            pointer="#/order_id",
            rule="not_covered.window",
            closed_at=deadline.isoformat(),
        )
    code_ids = [judged.code.id for judged in evaluation.codes]
    remedied = session.scalar(select(Remedy.code_id).where(Remedy.code_id.in_(code_ids)))
    if remedied is not None:
        judged = next(j for j in evaluation.codes if j.code.id == remedied)
        return CodeAlreadyRemediedError(
            f"code {mask(judged.code.last4)} was already replaced or refunded",
            pointer=judged.request.pointer,
        )
    return _open_claim_refusal(session, evaluation)


def _already_open(session: Session, evaluation: Evaluation) -> ClaimAlreadyOpenError:
    refusal = _open_claim_refusal(session, evaluation)
    if refusal is None:  # pragma: no cover - the insert collided with something else
        raise ClaimStateError("the claim could not be filed; try again")
    return refusal


def _open_claim_refusal(session: Session, evaluation: Evaluation) -> ClaimAlreadyOpenError | None:
    by_code = {judged.code.id: judged for judged in evaluation.codes}
    row = session.execute(
        select(ClaimCode.code_id, Claim.public_id)
        .join(Claim, Claim.id == ClaimCode.claim_id)
        .where(ClaimCode.code_id.in_(by_code), ClaimCode.open)
    ).first()
    if row is None:
        return None
    judged = by_code[row.code_id]
    return ClaimAlreadyOpenError(
        f"code {mask(judged.code.last4)} is already in open claim {row.public_id}",
        pointer=judged.request.pointer,
        existing_claim_id=row.public_id,
    )


def _store_screenshots(
    session: Session, store: EvidenceStore, claim: Claim, screenshots: Sequence[Screenshot]
) -> None:
    for screenshot in screenshots:
        stored = store.put(screenshot)
        evidence = ClaimEvidence(
            public_id=public_id("evd"),
            claim_id=claim.id,
            media_type=screenshot.media_type,
            size_bytes=len(screenshot.data),
            sha256=screenshot.sha256,
            key_id=stored.key_id,
            storage_key=stored.storage_key,
        )
        claim.evidence.append(evidence)  # the relationship adds it to the session
    session.flush()


def add_evidence(
    session: Session,
    vault: Vault,
    store: EvidenceStore,
    partner: Partner,
    claim_public_id: str,
    data: EvidenceInput,
    actor: Actor | None = None,
) -> Claim:
    """Add what the claim was missing and judge it again; a claim waiting on the partner
    (needs_info) goes back to the triage queue with a fresh 24-hour clock."""
    claim = locked_claim(session, claim_public_id, partner.id)
    if claim.status not in (ClaimStatus.SUBMITTED, ClaimStatus.TRIAGED, ClaimStatus.NEEDS_INFO):
        raise ClaimStateError(f"claim {claim.public_id} is {claim.status}: it takes no evidence")
    if not _adds_anything(data):
        raise InvalidInputError("nothing to add: send evidence, a screenshot or a note")
    if len(claim.evidence) + len(data.screenshots) > MAX_SCREENSHOTS:
        raise InvalidInputError(
            f"a claim holds at most {MAX_SCREENSHOTS} screenshots; it has {len(claim.evidence)}",
            pointer="#/screenshot",
        )
    redemption = data.redemption
    if redemption.account_region is not None:
        claim.account_region = normalize_region(
            redemption.account_region, "#/redemption/account_region"
        )
    if redemption.attempted_at is not None:
        claim.attempted_at = redemption.attempted_at
    if redemption.error_code is not None:
        claim.error_code = check_error_code(redemption.error_code, "#/error_code")
    if redemption.exposed_publicly is not None:
        claim.exposed_publicly = redemption.exposed_publicly
    if data.note:
        claim.description = "\n\n".join(filter(None, [claim.description, data.note]))
    _apply_code_evidence(session, vault, claim, data.codes)
    refuse_impossible_evidence(session, claim)  # before any file is written
    _store_screenshots(session, store, claim, data.screenshots)
    rejudge(session, claim)
    now = utcnow()
    if claim.status == ClaimStatus.NEEDS_INFO:
        move(claim, ClaimStatus.SUBMITTED)
        policy = rules.POLICIES[claim.policy_version]
        claim.triage_due_at = now + policy.sla.triage
        claim.due_at = claim.triage_due_at
    claim.updated_at = now
    audit.record(
        session,
        **audit_who(actor or Actor(f"partner:{partner.public_id}", partner.public_id)),
        action="claim.evidence",
        subject=claim.public_id,
        count=len(data.screenshots),
        details=_evidence_details(data),
    )
    notify(session, claim)
    return claim


def _adds_anything(data: EvidenceInput) -> bool:
    given = data.redemption
    return bool(
        data.codes
        or data.screenshots
        or data.note
        or given.account_region
        or given.attempted_at
        or given.error_code
        or given.exposed_publicly is not None
    )


def _evidence_details(data: EvidenceInput) -> dict[str, Any]:
    """What the partner stated, for the operator to see if a story changes after filing."""
    redemption = data.redemption
    return {
        "account_region": redemption.account_region,
        "attempted_at": redemption.attempted_at.isoformat() if redemption.attempted_at else None,
        "error_code": redemption.error_code,
        "exposed_publicly": redemption.exposed_publicly,
        "codes": [
            {
                "code": mask(c.code),
                "problem": c.problem,
                "code_region": c.code_region,
                "error_code": c.error_code,
            }
            for c in data.codes
        ],
    }


def _apply_code_evidence(
    session: Session, vault: Vault, claim: Claim, additions: Sequence[CodeClaimInput]
) -> None:
    if not additions:
        return
    order = session.get_one(Order, claim.order_id)
    product = session.get_one(Product, order.items[0].product_id)
    by_code = {claimed.code_id: claimed for claimed in claim.codes}
    for request in additions:
        code = find_code(session, vault, order, request, product.platform)
        claimed = by_code.get(code.id)
        if claimed is None:
            raise CodeNotOnOrderError(
                f"code {mask(code.last4)} is not part of claim {claim.public_id}",
                pointer=f"{request.pointer}/code",
            )
        if claimed.decision is not None:
            raise ClaimStateError(
                f"code {position_of(claim, claimed)} ({claimed.masked}) of claim "
                f"{claim.public_id} is already {claimed.decision}: it takes no evidence",
                pointer=f"{request.pointer}/code",
            )
        if request.code_region is not None:
            claimed.code_region = normalize_region(
                request.code_region, f"{request.pointer}/code_region"
            )
        if request.error_code is not None:
            claimed.error_code = check_error_code(
                request.error_code, f"{request.pointer}/error_code"
            )
        if request.problem is not None:
            claimed.problem = check_problem(request.problem, f"{request.pointer}/problem")


def cancel(session: Session, partner: Partner, claim_public_id: str) -> Claim:
    claim = locked_claim(session, claim_public_id, partner.id)
    if claim.status not in (ClaimStatus.SUBMITTED, ClaimStatus.TRIAGED, ClaimStatus.NEEDS_INFO):
        raise ClaimStateError(
            f"claim {claim.public_id} is {claim.status}; only a claim not yet decided can be "
            "cancelled"
        )
    if any(claimed.decision is not None for claimed in claim.codes):
        raise ClaimStateError(
            f"claim {claim.public_id} has codes already decided; only a claim not yet decided "
            "can be cancelled"
        )
    move(claim, ClaimStatus.CANCELLED)
    close(claim, utcnow())
    audit.record(
        session,
        actor=f"partner:{partner.public_id}",
        action="claim.cancel",
        partner_public_id=partner.public_id,
        subject=claim.public_id,
    )
    notify(session, claim)
    return claim


def change_remedy(
    session: Session,
    partner: Partner,
    claim_public_id: str,
    remedy: str,
    actor: Actor | None = None,
) -> Claim:
    """Switch between replacement and refund: freely until approval (for the codes not yet
    approved); after it, only a replacement still waiting for stock can become a refund. A
    switch to a refund pays every replacement still waiting at once."""
    if remedy not in tuple(RemedyKind):
        raise InvalidInputError(
            f"remedy must be one of {', '.join(tuple(RemedyKind))}", pointer="#/remedy"
        )
    claim = locked_claim(session, claim_public_id, partner.id)
    if claim.status not in OPEN_STATUSES or (
        claim.status == ClaimStatus.APPROVED and remedy != RemedyKind.REFUND
    ):
        raise ClaimStateError(f"claim {claim.public_id} is {claim.status}: its remedy is fixed")
    if (
        remedy == RemedyKind.REFUND
        and session.get_one(Order, claim.order_id).kind == OrderKind.REPLACEMENT
    ):
        raise InvalidInputError(
            "codes sent as replacements are replaced again, not refunded", pointer="#/remedy"
        )
    previous = claim.remedy
    claim.remedy = remedy
    claim.updated_at = utcnow()
    who = actor or Actor(f"partner:{partner.public_id}", partner.public_id)
    audit.record(
        session,
        **audit_who(who),
        action="claim.remedy",
        subject=claim.public_id,
        details={"from": previous, "to": remedy},
    )
    waiting = [r for r in remedies_of(claim) if r.state == RemedyState.WAITING]
    if remedy == RemedyKind.REFUND and waiting:
        for remedy_row in waiting:
            remedy_row.kind = RemedyKind.REFUND
        fulfil(session, claim, who)
    notify(session, claim)
    return claim
