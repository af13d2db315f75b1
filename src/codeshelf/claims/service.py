"""Code-support claims: filing under the policy, evidence, the operator's decisions, remedies.

Nothing here replaces or refunds on its own (seed 001): the policy's verdict is a
recommendation, and an operator approves. Once approved, each claimed code gets exactly one
remedy, ever (``claim_remedies.code_id`` is unique): a refund of what was paid for it, or a
replacement code allocated like any order. A replacement short of stock waits, and the claim with
it, until stock arrives or the partner switches to a refund.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

from sqlalchemy import case, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from codeshelf.audit import service as audit
from codeshelf.audit.models import AuditEvent
from codeshelf.catalog.codes import MalformedCodeError, format_for, mask
from codeshelf.catalog.models import Product
from codeshelf.claims import policy as rules
from codeshelf.claims.evidence import EvidenceStore, Screenshot
from codeshelf.claims.models import (
    API,
    APPROVED,
    CANCELLED,
    CLAIM_STATUSES,
    DONE,
    ESCALATED,
    NEEDS_INFO,
    OPEN_STATUSES,
    PRIORITY,
    REFUND,
    REJECTED,
    REMEDIES,
    REPLACEMENT,
    RESOLVED,
    SUBMITTED,
    TRANSITIONS,
    TRIAGED,
    WAITING,
    Claim,
    ClaimCode,
    ClaimEvidence,
    Remedy,
)
from codeshelf.kit.clock import add_business_days, utcnow
from codeshelf.kit.errors import (
    ConflictError,
    DomainError,
    InvalidCursorError,
    InvalidInputError,
    NotFoundError,
)
from codeshelf.kit.ids import public_id
from codeshelf.kit.money import Money
from codeshelf.kit.vault import Vault
from codeshelf.orders import service as orders
from codeshelf.orders.models import DELIVERED, Order, OrderItem
from codeshelf.orders.models import REPLACEMENT as REPLACEMENT_ORDER
from codeshelf.partners.models import Partner
from codeshelf.stock.models import DELIVERED as CODE_DELIVERED
from codeshelf.stock.models import QUARANTINED, VOIDED, Batch, Code
from codeshelf.stock.service import InsufficientStockError
from codeshelf.wallet import service as wallet
from codeshelf.wallet.models import REFUND as REFUND_TRANSACTION
from codeshelf.wallet.models import WALLET, Account, LedgerTransaction, Posting
from codeshelf.webhooks import service as webhooks

CLAIM_ID = re.compile(r"clm_[0-9a-f]{20}")
REGION = re.compile(r"[A-Z]{2}")
MAX_CODES = 100  # codes per claim
MAX_SCREENSHOTS = 10  # per claim, all uploads together


class ClaimNotFoundError(NotFoundError):
    slug = "claim-not-found"


class CodeNotOnOrderError(InvalidInputError):
    slug = "code-not-on-order"


class ClaimWindowClosedError(InvalidInputError):
    slug = "claim-window-closed"


class ClaimAlreadyOpenError(ConflictError):
    slug = "claim-already-open"


class CodeAlreadyRemediedError(ConflictError):
    slug = "code-already-remedied"


class ClaimStateError(ConflictError):
    """The claim is not in a state that allows this action (or changed meanwhile)."""

    slug = "claim-state-conflict"


class ClaimNotEligibleError(ConflictError):
    slug = "claim-not-eligible"


class ReplacementWaitingError(ConflictError):
    slug = "replacement-waiting-for-stock"


# ---------------------------------------------------------------------------------------------
# Input


@dataclass(frozen=True)
class CodeClaimInput:
    code: str
    pointer: str  # "#/codes/0"
    problem: str | None = None  # overrides the claim's problem for this code
    code_region: str | None = None
    error_code: str | None = None


@dataclass(frozen=True)
class Redemption:
    """What the partner knows of the failed attempt; every field optional until required."""

    account_region: str | None = None
    attempted_at: datetime | None = None
    error_code: str | None = None
    exposed_publicly: bool | None = None  # None: not stated (when filing: not exposed)


@dataclass(frozen=True)
class ClaimInput:
    order_id: str
    codes: Sequence[CodeClaimInput]
    problem: str
    remedy: str = REPLACEMENT
    redemption: Redemption = field(default_factory=Redemption)
    description: str | None = None
    screenshots: Sequence[Screenshot] = ()


@dataclass(frozen=True)
class Actor:
    """Who acts: written to the audit log with every change."""

    name: str  # "partner:ptr_…", "operator:alice"
    partner_public_id: str | None = None
    key_public_id: str | None = None


# ---------------------------------------------------------------------------------------------
# Evaluation (shared by the preview and filing)


@dataclass(frozen=True)
class JudgedCode:
    code: Code
    item: OrderItem
    product: Product
    request: CodeClaimInput
    facts: rules.CodeFacts
    verdict: rules.Verdict


@dataclass(frozen=True)
class Evaluation:
    order: Order
    policy: rules.Policy
    codes: list[JudgedCode]

    @property
    def window_closed(self) -> bool:
        return any(judged.verdict.rule == "not_covered.window" for judged in self.codes)


def _normalize_region(value: str | None, pointer: str) -> str | None:
    if value is None:
        return None
    region = value.strip().upper()
    if not REGION.fullmatch(region):
        raise InvalidInputError("a region is a two-letter code such as US or TR", pointer=pointer)
    return region


def _check_problem(problem: str, pointer: str) -> str:
    if problem not in rules.PROBLEMS:
        raise InvalidInputError(
            f"problem must be one of {', '.join(rules.PROBLEMS)}", pointer=pointer
        )
    return problem


def _find_code(
    session: Session, vault: Vault, order: Order, request: CodeClaimInput, platform: str
) -> Code:
    """The code of this order the partner names, or CodeNotOnOrderError.

    A code that exists on another order (anyone's) is answered exactly like one that does not
    exist, so nothing is learnt about other partners' codes.
    """
    try:
        canonical = format_for(platform).normalize(request.code)
    except MalformedCodeError as exc:
        raise InvalidInputError(f"not a code: {exc}", pointer=f"{request.pointer}/code") from None
    fingerprints = [vault.fingerprint(canonical), *vault.earlier_fingerprints(canonical)]
    item_ids = [item.id for item in order.items]
    code = session.scalar(
        select(Code).where(Code.fingerprint.in_(fingerprints), Code.order_item_id.in_(item_ids))
    )
    if code is None:
        raise CodeNotOnOrderError(
            f"code {mask(canonical)} was not delivered on order {order.public_id}",
            pointer=f"{request.pointer}/code",
        )
    return code


def evaluate(
    session: Session,
    vault: Vault,
    partner_id: int,
    data: ClaimInput,
    now: datetime,
    policy: rules.Policy = rules.CURRENT,
) -> Evaluation:
    """Find the claimed codes on the partner's order and judge each under ``policy``."""
    if not data.codes:
        raise InvalidInputError("name at least one code", pointer="#/codes")
    if len(data.codes) > MAX_CODES:
        raise InvalidInputError(f"a claim names at most {MAX_CODES} codes", pointer="#/codes")
    _check_problem(data.problem, "#/problem")
    order = orders.get_order(session, partner_id, data.order_id)
    if order.status != DELIVERED or order.delivered_at is None:
        raise CodeNotOnOrderError(f"order {order.public_id} has delivered no codes")
    products = orders.products_by_id(session, {item.product_id for item in order.items})
    items = {item.id: item for item in order.items}
    account_region = _normalize_region(
        data.redemption.account_region, "#/redemption/account_region"
    )
    judged: list[JudgedCode] = []
    seen: set[int] = set()
    for request in data.codes:
        platform = products[order.items[0].product_id].platform
        code = _find_code(session, vault, order, request, platform)
        if code.id in seen:
            raise InvalidInputError("the same code is named twice", pointer=request.pointer)
        seen.add(code.id)
        item = items[code.order_item_id or 0]
        problem = _check_problem(request.problem or data.problem, f"{request.pointer}/problem")
        facts = rules.CodeFacts(
            problem=problem,
            sku_region=products[item.product_id].region,
            delivered_at=order.delivered_at,
            submitted_at=now,
            account_region=account_region,
            attempted_at=data.redemption.attempted_at,
            error_code=request.error_code or data.redemption.error_code,
            has_screenshot=bool(data.screenshots),
            code_region=_normalize_region(request.code_region, f"{request.pointer}/code_region"),
            exposed_publicly=bool(data.redemption.exposed_publicly),
        )
        _refuse_impossible(facts, request)
        verdict = rules.evaluate(policy, facts)
        judged.append(JudgedCode(code, item, products[item.product_id], request, facts, verdict))
    return Evaluation(order, policy, judged)


def _refuse_impossible(facts: rules.CodeFacts, request: CodeClaimInput) -> None:
    impossible = rules.impossible_facts(facts)
    if not impossible:
        return
    field_name, reason = impossible[0]
    pointer = _pointer_of(field_name)
    if field_name == "error_code" and request.error_code:
        pointer = f"{request.pointer}/error_code"
    raise InvalidInputError(reason, pointer=pointer)


def _check_error_code(value: str, pointer: str) -> str:
    if not rules.PSN_ERROR_CODE.fullmatch(value):
        raise InvalidInputError("a PSN error code looks like WS-37432-9", pointer=pointer)
    return value


def _pointer_of(field_name: str) -> str:
    return {
        rules.ATTEMPTED_AT: "#/redemption/attempted_at",
        "error_code": "#/error_code",
    }[field_name]


# ---------------------------------------------------------------------------------------------
# Filing, evidence, cancelling (the partner's side)


def file_claim(
    session: Session,
    vault: Vault,
    store: EvidenceStore,
    partner: Partner,
    data: ClaimInput,
    *,
    channel: str = API,
    actor: Actor | None = None,
) -> Claim:
    """File a claim; refused whole (and nothing kept) when any code cannot be claimed."""
    if data.remedy not in REMEDIES:
        raise InvalidInputError(f"remedy must be one of {', '.join(REMEDIES)}", pointer="#/remedy")
    now = utcnow()
    evaluation = evaluate(session, vault, partner.id, data, now)
    if data.remedy == REFUND and evaluation.order.kind == REPLACEMENT_ORDER:
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
        public_id=public_id("clm"),
        partner_id=partner.id,
        order_id=evaluation.order.id,
        status=SUBMITTED,
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
        **_audit_who(actor or Actor(f"partner:{partner.public_id}", partner.public_id)),
        action="claim.file",
        subject=claim.public_id,
        count=len(claim.codes),
        details={"order": evaluation.order.public_id, "channel": channel},
    )
    _notify(session, claim)
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
    session.execute(
        select(Code.id).where(Code.id.in_(code_ids)).order_by(Code.id).with_for_update()
    )


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


def get_claim(session: Session, claim_public_id: str, partner_id: int | None = None) -> Claim:
    """A claim by id; with ``partner_id``, only that partner's (others look like missing)."""
    if not CLAIM_ID.fullmatch(claim_public_id):
        raise ClaimNotFoundError(f"no claim {claim_public_id!r}")
    query = select(Claim).where(Claim.public_id == claim_public_id)
    if partner_id is not None:
        query = query.where(Claim.partner_id == partner_id)
    claim = session.scalar(query)
    if claim is None:
        raise ClaimNotFoundError(f"no claim {claim_public_id}")
    return claim


def _locked_claim(session: Session, claim_public_id: str, partner_id: int | None = None) -> Claim:
    """The claim, its row locked until commit (PostgreSQL; SQLite writes one at a time)."""
    claim = get_claim(session, claim_public_id, partner_id)
    session.refresh(claim, with_for_update=True)
    return claim


def list_claims(
    session: Session, partner_id: int, *, before: str | None, limit: int, status: str | None
) -> list[Claim]:
    """The partner's claims, newest first; ``before`` is the last claim id of the prior page."""
    query = select(Claim).where(Claim.partner_id == partner_id).order_by(Claim.id.desc())
    if before is not None:
        if not CLAIM_ID.fullmatch(before):
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


@dataclass(frozen=True)
class EvidenceInput:
    redemption: Redemption = field(default_factory=Redemption)
    codes: Sequence[CodeClaimInput] = ()  # per-code additions (code_region, error_code)
    screenshots: Sequence[Screenshot] = ()
    note: str | None = None


def add_evidence(
    session: Session,
    vault: Vault,
    store: EvidenceStore,
    partner: Partner,
    claim_public_id: str,
    data: EvidenceInput,
) -> Claim:
    """Add what the claim was missing and judge it again; a claim waiting on the partner
    (needs_info) goes back to the triage queue with a fresh 24-hour clock."""
    claim = _locked_claim(session, claim_public_id, partner.id)
    if claim.status not in (SUBMITTED, TRIAGED, NEEDS_INFO):
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
        claim.account_region = _normalize_region(
            redemption.account_region, "#/redemption/account_region"
        )
    if redemption.attempted_at is not None:
        claim.attempted_at = redemption.attempted_at
    if redemption.error_code is not None:
        claim.error_code = _check_error_code(redemption.error_code, "#/error_code")
    if redemption.exposed_publicly is not None:
        claim.exposed_publicly = redemption.exposed_publicly
    if data.note:
        claim.description = "\n\n".join(filter(None, [claim.description, data.note]))
    _apply_code_evidence(session, vault, claim, data.codes)
    _refuse_impossible_evidence(session, claim)  # before any file is written
    _store_screenshots(session, store, claim, data.screenshots)
    _rejudge(session, claim)
    now = utcnow()
    if claim.status == NEEDS_INFO:
        _move(claim, SUBMITTED)
        policy = rules.POLICIES[claim.policy_version]
        claim.triage_due_at = now + policy.sla.triage
        claim.due_at = claim.triage_due_at
    claim.updated_at = now
    audit.record(
        session,
        actor=f"partner:{partner.public_id}",
        action="claim.evidence",
        partner_public_id=partner.public_id,
        subject=claim.public_id,
        count=len(data.screenshots),
        details=_evidence_details(data),
    )
    _notify(session, claim)
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
        code = _find_code(session, vault, order, request, product.platform)
        claimed = by_code.get(code.id)
        if claimed is None:
            raise CodeNotOnOrderError(
                f"code {mask(code.last4)} is not part of claim {claim.public_id}",
                pointer=f"{request.pointer}/code",
            )
        if request.code_region is not None:
            claimed.code_region = _normalize_region(
                request.code_region, f"{request.pointer}/code_region"
            )
        if request.error_code is not None:
            claimed.error_code = _check_error_code(
                request.error_code, f"{request.pointer}/error_code"
            )
        if request.problem is not None:
            claimed.problem = _check_problem(request.problem, f"{request.pointer}/problem")


def facts_of(session: Session, claim: Claim, claimed: ClaimCode) -> rules.CodeFacts:
    order = session.get_one(Order, claim.order_id)
    item = session.get_one(OrderItem, claimed.order_item_id)
    product = session.get_one(Product, item.product_id)
    return rules.CodeFacts(
        problem=claimed.problem,
        sku_region=product.region,
        delivered_at=order.delivered_at or claim.submitted_at,
        submitted_at=claim.submitted_at,
        account_region=claim.account_region,
        attempted_at=claim.attempted_at,
        error_code=claimed.error_code or claim.error_code,
        has_screenshot=bool(claim.evidence),
        code_region=claimed.code_region,
        exposed_publicly=claim.exposed_publicly,
    )


def _refuse_impossible_evidence(session: Session, claim: Claim) -> None:
    for claimed in claim.codes:
        facts = facts_of(session, claim, claimed)
        impossible = rules.impossible_facts(replace(facts, submitted_at=utcnow()))
        if impossible:
            field_name, reason = impossible[0]
            raise InvalidInputError(reason, pointer=_pointer_of(field_name))


def _rejudge(session: Session, claim: Claim) -> None:
    """Judge every code again under the claim's own policy version (new evidence counts; the
    filing time, which the window is measured to, does not move)."""
    policy = rules.POLICIES[claim.policy_version]
    for claimed in claim.codes:
        facts = facts_of(session, claim, claimed)
        verdict = rules.evaluate(policy, facts)
        claimed.verdict = verdict.verdict
        claimed.classification = verdict.classification
        claimed.rule = verdict.rule
        claimed.missing = list(verdict.missing)


def cancel(session: Session, partner: Partner, claim_public_id: str) -> Claim:
    claim = _locked_claim(session, claim_public_id, partner.id)
    if claim.status not in (SUBMITTED, TRIAGED, NEEDS_INFO):
        raise ClaimStateError(
            f"claim {claim.public_id} is {claim.status}; only a claim not yet decided can be "
            "cancelled"
        )
    _move(claim, CANCELLED)
    _close(claim, utcnow())
    audit.record(
        session,
        actor=f"partner:{partner.public_id}",
        action="claim.cancel",
        partner_public_id=partner.public_id,
        subject=claim.public_id,
    )
    _notify(session, claim)
    return claim


def change_remedy(
    session: Session,
    partner: Partner,
    claim_public_id: str,
    remedy: str,
    actor: Actor | None = None,
) -> Claim:
    """Switch between replacement and refund: freely until approval; after it, only a
    replacement still waiting for stock can become a refund (which is then paid at once)."""
    if remedy not in REMEDIES:
        raise InvalidInputError(f"remedy must be one of {', '.join(REMEDIES)}", pointer="#/remedy")
    claim = _locked_claim(session, claim_public_id, partner.id)
    if claim.status not in OPEN_STATUSES or (claim.status == APPROVED and remedy != REFUND):
        raise ClaimStateError(f"claim {claim.public_id} is {claim.status}: its remedy is fixed")
    if remedy == REFUND and session.get_one(Order, claim.order_id).kind == REPLACEMENT_ORDER:
        raise InvalidInputError(
            "codes sent as replacements are replaced again, not refunded", pointer="#/remedy"
        )
    previous = claim.remedy
    claim.remedy = remedy
    claim.updated_at = utcnow()
    who = actor or Actor(f"partner:{partner.public_id}", partner.public_id)
    audit.record(
        session,
        **_audit_who(who),
        action="claim.remedy",
        subject=claim.public_id,
        details={"from": previous, "to": remedy},
    )
    if claim.status == APPROVED:
        for remedy_row in _remedies(claim):
            if remedy_row.state == WAITING:
                remedy_row.kind = REFUND
        _fulfil(session, claim, who)
    _notify(session, claim)
    return claim


# ---------------------------------------------------------------------------------------------
# The operator's decisions


def _move(claim: Claim, status: str) -> None:
    if status not in TRANSITIONS[claim.status]:
        raise ClaimStateError(f"claim {claim.public_id} is {claim.status}; it cannot be {status}")
    claim.status = status


def _close(claim: Claim, now: datetime) -> None:
    claim.due_at = None
    claim.updated_at = now
    for claimed in claim.codes:
        claimed.open = False


def _notify(session: Session, claim: Claim) -> None:
    """A claim.updated event (webhook and events feed), in the change's own transaction."""
    order_public_id = order_public_ids(session, claim)[claim.order_id]
    webhooks.emit(
        session,
        claim.partner_id,
        "claim.updated",
        {
            "claim_id": claim.public_id,
            "order_id": order_public_id,
            "status": claim.status,
            "remedy": claim.remedy,
            "customer_message": customer_message(claim),
        },
    )


def _audit_who(actor: Actor) -> dict[str, Any]:
    return {
        "actor": actor.name,
        "partner_public_id": actor.partner_public_id,
        "api_key_public_id": actor.key_public_id,
    }


def _decision(
    session: Session, claim: Claim, actor: Actor, action: str, reason: str | None, **details: Any
) -> None:
    audit.record(
        session,
        **_audit_who(actor),
        action=f"claim.{action}",
        subject=claim.public_id,
        details={"reason": reason, "partner": _partner_public_id(session, claim), **details},
    )


def _partner_public_id(session: Session, claim: Claim) -> str:
    return session.get_one(Partner, claim.partner_id).public_id


def _triage_if_needed(session: Session, claim: Claim, actor: Actor, now: datetime) -> None:
    if claim.status == SUBMITTED:
        _move(claim, TRIAGED)
        claim.triaged_at = now
        # Verification under way: decided, and the remedy sent, within the remedy clock.
        claim.due_at = now + rules.POLICIES[claim.policy_version].sla.remedy
        _decision(session, claim, actor, "triage", None)


def _required_reason(reason: str | None, what: str) -> str:
    text = (reason or "").strip()
    if not text:
        raise InvalidInputError(f"a reason is required to {what} a claim", pointer="#/reason")
    if len(text) > 2000:
        raise InvalidInputError("a reason is at most 2000 characters", pointer="#/reason")
    return text


def triage(session: Session, claim_public_id: str, actor: Actor) -> Claim:
    claim = _locked_claim(session, claim_public_id)
    if claim.status != SUBMITTED:
        raise ClaimStateError(f"claim {claim.public_id} is {claim.status}, not submitted")
    _triage_if_needed(session, claim, actor, utcnow())
    _notify(session, claim)
    return claim


def request_info(session: Session, claim_public_id: str, actor: Actor, message: str) -> Claim:
    """Ask the partner for more; the SLA clock waits on the partner until they answer."""
    text = _required_reason(message, "request information on")
    claim = _locked_claim(session, claim_public_id)
    now = utcnow()
    _triage_if_needed(session, claim, actor, now)
    _move(claim, NEEDS_INFO)
    claim.info_request = text
    claim.due_at = None
    claim.updated_at = now
    _decision(session, claim, actor, "request_info", text)
    _notify(session, claim)
    return claim


def escalate(
    session: Session,
    claim_public_id: str,
    actor: Actor,
    reason: str,
    holidays: frozenset[date] = frozenset(),
) -> Claim:
    """Dispute upstream: the claimed codes are quarantined while the supplier investigates."""
    text = _required_reason(reason, "escalate")
    claim = _locked_claim(session, claim_public_id)
    now = utcnow()
    _triage_if_needed(session, claim, actor, now)
    _move(claim, ESCALATED)
    policy = rules.POLICIES[claim.policy_version]
    claim.escalated_at = now
    claim.upstream_due_at = add_business_days(now, policy.sla.upstream_business_days, holidays)
    claim.due_at = claim.upstream_due_at
    claim.updated_at = now
    _set_code_state(session, claim, QUARANTINED, expect=CODE_DELIVERED)
    _decision(session, claim, actor, "escalate", text)
    _notify(session, claim)
    return claim


def reject(
    session: Session, claim_public_id: str, actor: Actor, reason: str, rule: str | None = None
) -> Claim:
    """Refuse the claim under a not-covered rule of its policy (by default the one its verdict
    names); codes quarantined by an escalation go back to the partner as delivered."""
    text = _required_reason(reason, "reject")
    claim = _locked_claim(session, claim_public_id)
    policy = rules.POLICIES[claim.policy_version]
    chosen = rule or next((c.rule for c in claim.codes if c.verdict == rules.NOT_COVERED), None)
    if chosen is None or chosen not in policy.rules or policy.rules[chosen].covered:
        not_covered = sorted(r.id for r in policy.rules.values() if not r.covered)
        raise InvalidInputError(
            f"name the rule the claim falls under: one of {', '.join(not_covered)}",
            pointer="#/rule",
        )
    now = utcnow()
    _triage_if_needed(session, claim, actor, now)
    _move(claim, REJECTED)
    if claim.escalated_at is not None:
        _set_code_state(session, claim, CODE_DELIVERED, expect=QUARANTINED)
    claim.decision_rule = chosen
    claim.decision_reason = text
    claim.decided_at = now
    _close(claim, now)
    _decision(session, claim, actor, "reject", text, rule=chosen)
    _notify(session, claim)
    return claim


def approve(
    session: Session, claim_public_id: str, actor: Actor, reason: str, *, override: bool = False
) -> Claim:
    """Approve every code of the claim: each is voided and gets the partner's chosen remedy now
    (a refund) or as soon as stock allows (a replacement).

    A claim with any code the policy did not find eligible needs ``override`` (the operator
    takes responsibility; the reason says why): nothing is paid for a not-covered code by a
    slip of the hand.
    """
    text = _required_reason(reason, "approve")
    claim = _locked_claim(session, claim_public_id)
    doubtful = [c for c in claim.codes if c.verdict != rules.ELIGIBLE]
    if doubtful and not override:
        listed = ", ".join(f"{c.masked} ({c.rule or c.verdict})" for c in doubtful)
        raise ClaimNotEligibleError(
            f"not every code is eligible under the policy: {listed}; reject the claim, ask for "
            "information, or approve with override and a reason",
            codes=[c.masked for c in doubtful],
        )
    now = utcnow()
    _triage_if_needed(session, claim, actor, now)
    _move(claim, APPROVED)
    policy = rules.POLICIES[claim.policy_version]
    claim.decided_at = now
    claim.decision_reason = text
    claim.remedy_due_at = now + policy.sla.remedy
    claim.due_at = claim.remedy_due_at
    claim.updated_at = now
    expected = QUARANTINED if claim.escalated_at is not None else CODE_DELIVERED
    _set_code_state(session, claim, VOIDED, expect=expected)
    for claimed in claim.codes:
        try:
            with session.begin_nested():
                remedy = Remedy(
                    claim_code_id=claimed.id, code_id=claimed.code_id, kind=claim.remedy
                )
                session.add(remedy)
        except IntegrityError:
            raise CodeAlreadyRemediedError(
                f"code {claimed.masked} was already replaced or refunded"
            ) from None
        claimed.remedy = remedy
    _decision(
        session,
        claim,
        actor,
        "approve",
        text,
        remedy=claim.remedy,
        override=[c.masked for c in doubtful] or None,
    )
    _fulfil(session, claim, actor)
    _notify(session, claim)
    return claim


def _set_code_state(session: Session, claim: Claim, state: str, *, expect: str) -> None:
    """Move the claimed codes, all of which must be in ``expect`` (else someone raced us)."""
    code_ids = [claimed.code_id for claimed in claim.codes]
    moved = session.execute(
        update(Code).where(Code.id.in_(code_ids), Code.state == expect).values(state=state)
    )
    if moved.rowcount != len(code_ids):  # type: ignore[attr-defined]
        raise ClaimStateError(
            f"claim {claim.public_id}: its codes are no longer {expect}; nothing was changed"
        )


def _remedies(claim: Claim) -> list[Remedy]:
    return [claimed.remedy for claimed in claim.codes if claimed.remedy is not None]


def _fulfil(session: Session, claim: Claim, actor: Actor) -> bool:
    """Carry out the claim's waiting remedies; resolve it when none is left waiting.

    Refunds always succeed. Replacements are allocated together, all or none: if stock is
    short they keep waiting. Returns True when the claim is resolved.
    """
    now = utcnow()
    waiting = [remedy for remedy in _remedies(claim) if remedy.state == WAITING]
    partner = session.get_one(Partner, claim.partner_id)
    order = session.get_one(Order, claim.order_id)
    claimed_by_id = {claimed.id: claimed for claimed in claim.codes}
    for remedy in waiting:
        if remedy.kind == REFUND:
            _refund(session, claim, partner, order, remedy, claimed_by_id[remedy.claim_code_id])
            remedy.completed_at = now
    replacements = [r for r in waiting if r.kind == REPLACEMENT]
    if replacements:
        _replace(session, claim, order, replacements, claimed_by_id, now)
    if any(remedy.state == WAITING for remedy in _remedies(claim)):
        return False
    _move(claim, RESOLVED)
    claim.resolved_at = now
    _close(claim, now)
    _decision(session, claim, actor, "resolve", None)
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
            f"refund:{claim.public_id}:{_position(claim, claimed)}",
        )
        remedy.ledger_transaction_id = txn.id
    else:
        # A free replacement code that failed again: nothing was paid, so it is replaced.
        remedy.kind = REPLACEMENT
        return
    remedy.amount_minor = paid.minor
    remedy.currency = paid.currency
    remedy.state = DONE


def _position(claim: Claim, claimed: ClaimCode) -> int:
    """The code's place in its claim (1, 2, …): names a refund without a global counter."""
    return [c.id for c in claim.codes].index(claimed.id) + 1


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
        remedy.state = DONE
        remedy.completed_at = now


def resolve(session: Session, claim_public_id: str, actor: Actor) -> Claim:
    """Carry out what an approved claim still waits for; refused while stock is short."""
    claim = _locked_claim(session, claim_public_id)
    if claim.status != APPROVED:
        raise ClaimStateError(f"claim {claim.public_id} is {claim.status}, not approved")
    if not _fulfil(session, claim, actor):
        waiting = sum(1 for remedy in _remedies(claim) if remedy.state == WAITING)
        raise ReplacementWaitingError(
            f"claim {claim.public_id}: {waiting} replacement code(s) wait for stock; import "
            "stock or switch the claim to a refund"
        )
    _notify(session, claim)
    return claim


def fulfil_waiting(session: Session, actor: Actor) -> list[str]:
    """Try every approved claim still waiting for replacements, oldest decision first.

    Returns the ids of the claims resolved. Run after stock arrives (``stock import`` does).
    """
    waiting = session.scalars(
        select(Claim).where(Claim.status == APPROVED).order_by(Claim.decided_at, Claim.id)
    ).all()
    resolved = []
    for claim in waiting:
        session.refresh(claim, with_for_update=True)
        if claim.status == APPROVED and _fulfil(session, claim, actor):
            resolved.append(claim.public_id)
            _notify(session, claim)
    return resolved


# ---------------------------------------------------------------------------------------------
# The operator's queue and the claim's context


def queue(
    session: Session, *, status: str | None = None, overdue: bool = False, limit: int = 200
) -> list[Claim]:
    """Open claims, most urgent first: overdue ones by deadline; then API claims before
    others (priority triage, policy section 5), each by deadline; claims waiting on the partner
    (no deadline) last. ``overdue`` keeps those whose deadline has passed."""
    now = utcnow()
    query = select(Claim)
    if status is not None:
        if status not in CLAIM_STATUSES:
            raise InvalidInputError(
                f"unknown status {status!r}: one of {', '.join(CLAIM_STATUSES)}",
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
    retrievals, first_fetched_at = session.execute(
        select(func.count(), func.min(AuditEvent.occurred_at)).where(
            AuditEvent.action == "codes.reveal", AuditEvent.subject == order.public_id
        )
    ).one()
    result = []
    for claimed in claim.codes:
        code = session.get_one(Code, claimed.code_id)
        batch = session.get_one(Batch, code.batch_id)
        product = session.get_one(Product, code.product_id)
        others = session.scalars(
            select(Claim.public_id)
            .join(ClaimCode, ClaimCode.claim_id == Claim.id)
            .join(Code, Code.id == ClaimCode.code_id)
            .where(Code.batch_id == batch.id, Claim.id != claim.id)
            .distinct()
        ).all()
        same_code = session.scalars(
            select(Claim.public_id)
            .join(ClaimCode, ClaimCode.claim_id == Claim.id)
            .where(ClaimCode.code_id == code.id, Claim.id != claim.id)
            .order_by(Claim.id)
        ).all()
        result.append(
            CodeHistory(
                masked=claimed.masked,
                sku=product.sku,
                batch=batch.reference,
                supplier=batch.supplier,
                imported_at=batch.imported_at,
                delivered_at=code.delivered_at,
                state=code.state,
                retrievals=retrievals or 0,
                first_fetched_at=first_fetched_at,
                earlier_claims_on_batch=sorted(others),
                earlier_claims_on_code=list(same_code),
            )
        )
    return result


def order_public_ids(session: Session, claim: Claim) -> dict[int, str]:
    """The public ids of the claim's order and its replacement orders, by internal id."""
    ids = {claim.order_id} | {
        r.replacement_order_id for r in _remedies(claim) if r.replacement_order_id
    }
    return dict(session.execute(select(Order.id, Order.public_id).where(Order.id.in_(ids))).all())


def customer_message(claim: Claim) -> str:
    """One sentence a reseller can show its customer for the claim's state."""
    policy = rules.POLICIES[claim.policy_version]
    if claim.status in (SUBMITTED, TRIAGED):
        return "We have received your report about this code and are checking it."
    if claim.status == NEEDS_INFO:
        missing = sorted({item for claimed in claim.codes for item in claimed.missing})
        wanted = [policy.evidence_labels[item] for item in missing] or ["a few more details"]
        return f"To check your code we need {' and '.join(wanted)}."
    if claim.status == ESCALATED:
        return (
            "We are investigating this code with the card issuer; this can take up to "
            f"{policy.sla.upstream_business_days} business days."
        )
    if claim.status == REJECTED:
        reason = policy.rules[claim.decision_rule or ""].customer_message
        return f"We could not approve your report. {reason}"
    if claim.status == CANCELLED:
        return "This report was withdrawn."
    remedies = _remedies(claim)
    if any(remedy.state == WAITING for remedy in remedies):
        return "Your report was approved; a replacement code will be sent to you shortly."
    if remedies and all(remedy.kind == REFUND for remedy in remedies):
        return "Your report was approved and the price of the code has been refunded."
    return "Your report was approved and a replacement code has been issued."


@dataclass(frozen=True)
class BatchQuality:
    reference: str
    sku: str
    supplier: str | None
    imported: int
    available: int
    delivered: int  # ever delivered to a partner (voided and claimed codes included)
    claimed: int  # distinct codes named in any claim
    defective: int  # codes whose claim was approved (replaced or refunded)
    quarantined: int

    @property
    def defect_rate(self) -> float:
        return self.defective / self.delivered if self.delivered else 0.0


def batch_quality(session: Session) -> list[BatchQuality]:
    """Per batch and supplier: what went out, what came back as claims, what was confirmed."""
    states = Counter(
        {
            (batch_id, state): count
            for batch_id, state, count in session.execute(
                select(Code.batch_id, Code.state, func.count()).group_by(Code.batch_id, Code.state)
            ).all()
        }
    )
    delivered = dict(
        session.execute(
            select(Code.batch_id, func.count())
            .where(Code.order_item_id.is_not(None))
            .group_by(Code.batch_id)
        ).all()
    )
    claimed = dict(
        session.execute(
            select(Code.batch_id, func.count(func.distinct(ClaimCode.code_id)))
            .join(ClaimCode, ClaimCode.code_id == Code.id)
            .group_by(Code.batch_id)
        ).all()
    )
    defective = dict(
        session.execute(
            select(Code.batch_id, func.count())
            .join(Remedy, Remedy.code_id == Code.id)
            .group_by(Code.batch_id)
        ).all()
    )
    rows = session.execute(
        select(Batch, Product.sku).join(Product, Product.id == Batch.product_id).order_by(Batch.id)
    ).all()
    return [
        BatchQuality(
            reference=batch.reference,
            sku=sku,
            supplier=batch.supplier,
            imported=batch.code_count,
            available=states[(batch.id, "available")],
            delivered=delivered.get(batch.id, 0),
            claimed=claimed.get(batch.id, 0),
            defective=defective.get(batch.id, 0),
            quarantined=states[(batch.id, QUARANTINED)],
        )
        for batch, sku in rows
    ]


# ---------------------------------------------------------------------------------------------
# Invariants


def check(session: Session) -> list[str]:
    """Violations: refunds without a claim or above what was paid; remedied codes not voided;
    two open claims on one code."""
    problems = []
    refunds = session.execute(
        select(LedgerTransaction.public_id, Remedy.id)
        .outerjoin(Remedy, Remedy.ledger_transaction_id == LedgerTransaction.id)
        .where(LedgerTransaction.kind == REFUND_TRANSACTION)
    )
    problems += [f"refund {txn} points to no claim" for txn, remedy in refunds if remedy is None]
    overpaid = session.execute(
        select(Remedy.id, Remedy.amount_minor, OrderItem.unit_price_minor)
        .join(ClaimCode, ClaimCode.id == Remedy.claim_code_id)
        .join(OrderItem, OrderItem.id == ClaimCode.order_item_id)
        .where(Remedy.kind == REFUND, Remedy.state == DONE)
    )
    problems += [
        f"remedy {remedy_id}: refunded {amount} but {paid} was paid"
        for remedy_id, amount, paid in overpaid
        if amount != paid
    ]
    credited_to_wallet = (
        select(func.coalesce(func.sum(Posting.amount_minor), 0))
        .join(Account, Account.id == Posting.account_id)
        .where(Posting.transaction_id == Remedy.ledger_transaction_id, Account.kind == WALLET)
        .correlate(Remedy)
        .scalar_subquery()
    )
    posted = session.execute(
        select(Remedy.id, Remedy.amount_minor, credited_to_wallet).where(
            Remedy.ledger_transaction_id.is_not(None)
        )
    )
    problems += [
        f"remedy {remedy_id}: {amount} recorded but {credited} credited to the wallet"
        for remedy_id, amount, credited in posted
        if amount != credited
    ]
    not_voided = session.scalar(
        select(func.count())
        .select_from(Remedy)
        .join(Code, Code.id == Remedy.code_id)
        .where(Code.state != VOIDED)
    )
    if not_voided:
        problems.append(f"{not_voided} remedied code(s) are not voided")
    doubly_open = session.scalar(
        select(func.count()).select_from(
            select(ClaimCode.code_id)
            .where(ClaimCode.open)
            .group_by(ClaimCode.code_id)
            .having(func.count() > 1)
            .subquery()
        )
    )
    if doubly_open:
        problems.append(f"{doubly_open} code(s) are in more than one open claim")
    return problems
