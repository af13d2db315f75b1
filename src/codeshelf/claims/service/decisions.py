"""The operator's decisions: triage, ask for information, escalate upstream, reject under a
not-covered rule, approve (every code voided and given its one remedy)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from codeshelf.claims import policy as rules
from codeshelf.claims.models import (
    Claim,
    ClaimStatus,
    Remedy,
)
from codeshelf.claims.service.errors import (
    ClaimNotEligibleError,
    ClaimStateError,
    CodeAlreadyRemediedError,
)
from codeshelf.claims.service.inputs import Actor
from codeshelf.claims.service.lifecycle import (
    close,
    locked_claim,
    move,
    notify,
    record_decision,
)
from codeshelf.claims.service.remedies import fulfil
from codeshelf.kit.clock import add_business_days, utcnow
from codeshelf.kit.errors import (
    InvalidInputError,
)
from codeshelf.stock import service as stock
from codeshelf.stock.service import CodeState


def _triage_if_needed(session: Session, claim: Claim, actor: Actor, now: datetime) -> None:
    if claim.status == ClaimStatus.SUBMITTED:
        move(claim, ClaimStatus.TRIAGED)
        claim.triaged_at = now
        # Verification under way: decided, and the remedy sent, within the remedy clock.
        claim.due_at = now + rules.POLICIES[claim.policy_version].sla.remedy
        record_decision(session, claim, actor, "triage", None)


def _required_reason(reason: str | None, what: str) -> str:
    text = (reason or "").strip()
    if not text:
        raise InvalidInputError(f"a reason is required to {what} a claim", pointer="#/reason")
    if len(text) > 2000:
        raise InvalidInputError("a reason is at most 2000 characters", pointer="#/reason")
    return text


def triage(session: Session, claim_public_id: str, actor: Actor) -> Claim:
    claim = locked_claim(session, claim_public_id)
    if claim.status != ClaimStatus.SUBMITTED:
        raise ClaimStateError(f"claim {claim.public_id} is {claim.status}, not submitted")
    _triage_if_needed(session, claim, actor, utcnow())
    notify(session, claim)
    return claim


def request_info(session: Session, claim_public_id: str, actor: Actor, message: str) -> Claim:
    """Ask the partner for more; the SLA clock waits on the partner until they answer."""
    text = _required_reason(message, "request information on")
    claim = locked_claim(session, claim_public_id)
    now = utcnow()
    _triage_if_needed(session, claim, actor, now)
    move(claim, ClaimStatus.NEEDS_INFO)
    claim.info_request = text
    claim.due_at = None
    claim.updated_at = now
    record_decision(session, claim, actor, "request_info", text)
    notify(session, claim)
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
    claim = locked_claim(session, claim_public_id)
    now = utcnow()
    _triage_if_needed(session, claim, actor, now)
    move(claim, ClaimStatus.ESCALATED)
    policy = rules.POLICIES[claim.policy_version]
    claim.escalated_at = now
    claim.upstream_due_at = add_business_days(now, policy.sla.upstream_business_days, holidays)
    claim.due_at = claim.upstream_due_at
    claim.updated_at = now
    _set_code_state(session, claim, CodeState.QUARANTINED, expect=CodeState.DELIVERED)
    record_decision(session, claim, actor, "escalate", text)
    notify(session, claim)
    return claim


def reject(
    session: Session, claim_public_id: str, actor: Actor, reason: str, rule: str | None = None
) -> Claim:
    """Refuse the claim under a not-covered rule of its policy (by default the one its verdict
    names); codes quarantined by an escalation go back to the partner as delivered."""
    text = _required_reason(reason, "reject")
    claim = locked_claim(session, claim_public_id)
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
    move(claim, ClaimStatus.REJECTED)
    if claim.escalated_at is not None:
        _set_code_state(session, claim, CodeState.DELIVERED, expect=CodeState.QUARANTINED)
    claim.decision_rule = chosen
    claim.decision_reason = text
    claim.decided_at = now
    close(claim, now)
    record_decision(session, claim, actor, "reject", text, rule=chosen)
    notify(session, claim)
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
    claim = locked_claim(session, claim_public_id)
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
    move(claim, ClaimStatus.APPROVED)
    policy = rules.POLICIES[claim.policy_version]
    claim.decided_at = now
    claim.decision_reason = text
    claim.remedy_due_at = now + policy.sla.remedy
    claim.due_at = claim.remedy_due_at
    claim.updated_at = now
    expected = CodeState.QUARANTINED if claim.escalated_at is not None else CodeState.DELIVERED
    _set_code_state(session, claim, CodeState.VOIDED, expect=expected)
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
    record_decision(
        session,
        claim,
        actor,
        "approve",
        text,
        remedy=claim.remedy,
        override=[c.masked for c in doubtful] or None,
    )
    fulfil(session, claim, actor)
    notify(session, claim)
    return claim


def _set_code_state(session: Session, claim: Claim, state: CodeState, *, expect: CodeState) -> None:
    """Move the claimed codes, all of which must be in ``expect`` (else someone raced us)."""
    code_ids = [claimed.code_id for claimed in claim.codes]
    if not stock.move_codes(session, code_ids, state, expect=expect):
        raise ClaimStateError(
            f"claim {claim.public_id}: its codes are no longer {expect}; nothing was changed"
        )
