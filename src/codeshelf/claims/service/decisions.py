"""The operator's decisions: triage, ask for information, escalate upstream, and the decision
on each code (``decide``): an approved code is voided and gets its one remedy, a rejected one
is refused under a not-covered rule and goes back to the partner. ``approve`` and ``reject``
decide every code still undecided one way."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from codeshelf.claims import policy as rules
from codeshelf.claims.models import (
    TRANSITIONS,
    Claim,
    ClaimCode,
    ClaimStatus,
    CodeDecision,
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
    position_of,
    record_decision,
    undecided,
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
    # Codes already decided stay as they are: voided (approved) or back with the partner.
    _set_code_state(
        session, claim, undecided(claim), CodeState.QUARANTINED, expect=CodeState.DELIVERED
    )
    record_decision(session, claim, actor, "escalate", text)
    notify(session, claim)
    return claim


# A claim whose codes may still be decided: what approving or rejecting may leave (a submitted
# claim is triaged on the way).
DECIDABLE = frozenset(
    status
    for status, targets in TRANSITIONS.items()
    if {ClaimStatus.APPROVED, ClaimStatus.REJECTED} <= targets
) | {ClaimStatus.SUBMITTED}


def decide(
    session: Session,
    claim_public_id: str,
    actor: Actor,
    reason: str,
    *,
    approve: Sequence[int | str] = (),
    reject: Sequence[int | str] = (),
    rule: str | None = None,
    override: bool = False,
) -> Claim:
    """Decide some or all of a claim's undecided codes, each named by its position (1, 2, … as
    the claim lists its codes) or its masked code as shown (``****-****-AB12``, or ``AB12``).

    An approved code is voided and gets the claim's remedy: a refund now, a replacement as soon
    as stock allows; approving a code the policy did not find eligible needs ``override``. A
    rejected code is refused under ``rule`` (a not-covered rule of the claim's policy; by
    default the code's own verdict rule), stops holding the code, and a code an escalation
    quarantined goes back to the partner as delivered. Codes left undecided keep the claim where
    it is (a submitted claim is triaged); once every code is decided the claim is approved if
    any code was (and resolved when its remedies are done), else rejected.
    """
    verb = "decide" if approve and reject else "reject" if reject else "approve"
    text = _required_reason(reason, verb)
    claim = locked_claim(session, claim_public_id)
    _check_decidable(claim, verb)
    approving = _named(claim, approve, "#/approve")
    rejecting = _named(claim, reject, "#/reject")
    return _decide(session, claim, actor, text, approving, rejecting, rule, override=override)


def approve(
    session: Session, claim_public_id: str, actor: Actor, reason: str, *, override: bool = False
) -> Claim:
    """Approve every code still undecided (``decide`` with all of them approved)."""
    text = _required_reason(reason, "approve")
    claim = locked_claim(session, claim_public_id)
    _check_decidable(claim, "approve")
    return _decide(session, claim, actor, text, undecided(claim), [], None, override=override)


def reject(
    session: Session, claim_public_id: str, actor: Actor, reason: str, rule: str | None = None
) -> Claim:
    """Reject every code still undecided (``decide`` with all of them rejected): under
    ``rule``, or each under its own not-covered verdict rule."""
    text = _required_reason(reason, "reject")
    claim = locked_claim(session, claim_public_id)
    _check_decidable(claim, "reject")
    return _decide(session, claim, actor, text, [], undecided(claim), rule, override=False)


def _check_decidable(claim: Claim, verb: str) -> None:
    if claim.status not in DECIDABLE:
        raise ClaimStateError(
            f"claim {claim.public_id} is {claim.status}; it cannot be {verb.rstrip('e')}ed"
        )


def _named(claim: Claim, refs: Sequence[int | str], pointer: str) -> list[ClaimCode]:
    """The claim's codes ``refs`` name, each by position or masked code."""
    return [_code_named(claim, ref, f"{pointer}/{index}") for index, ref in enumerate(refs)]


def _code_named(claim: Claim, ref: int | str, pointer: str) -> ClaimCode:
    text = str(ref).strip()
    if isinstance(ref, int) or (text.isdigit() and len(text) < 4):  # 4 characters: a code's end
        position = int(text)
        if not 1 <= position <= len(claim.codes):
            raise InvalidInputError(
                f"claim {claim.public_id} has no code {position}: its codes are 1 to "
                f"{len(claim.codes)}",
                pointer=pointer,
            )
        return claim.codes[position - 1]
    last4 = text.upper()[-4:]
    found = [c for c in claim.codes if len(text) >= 4 and c.masked.endswith(last4)]
    if len(found) != 1 or not found[0].masked.endswith(text.upper()):
        which = "matches several codes: name it by its position" if found else "is not one"
        raise InvalidInputError(
            f"{text!r} {which} of claim {claim.public_id}'s codes", pointer=pointer
        )
    return found[0]


def _decide(
    session: Session,
    claim: Claim,
    actor: Actor,
    reason: str,
    approving: list[ClaimCode],
    rejecting: list[ClaimCode],
    rule: str | None,
    *,
    override: bool,
) -> Claim:
    """The one rule behind every decision on a claim's codes (see ``decide``)."""
    rule = (rule or "").strip() or None
    _check_codes(claim, approving, rejecting)
    doubtful = _check_override(approving, override)
    rules_of = _rejection_rules(claim, rejecting, rule)
    now = utcnow()
    _triage_if_needed(session, claim, actor, now)
    _reject_codes(session, claim, rejecting, rules_of, now)
    _approve_codes(session, claim, approving, now)
    claim.updated_at = now
    if not undecided(claim):
        _conclude(claim, reason, now)
    action = "decide" if approving and rejecting else "reject" if rejecting else "approve"
    record_decision(
        session,
        claim,
        actor,
        action,
        reason,
        **_decision_details(claim, approving, rejecting, rule, doubtful),
    )
    if approving or claim.status == ClaimStatus.APPROVED:
        # Remedies now; and a claim whose last codes were rejected after others were approved
        # and remedied is resolved now.
        fulfil(session, claim, actor)
    notify(session, claim)
    return claim


def _reject_codes(
    session: Session,
    claim: Claim,
    rejecting: list[ClaimCode],
    rules_of: dict[int, str],
    now: datetime,
) -> None:
    """Refused, and the partner's again: no longer held by the claim, out of quarantine."""
    if claim.escalated_at is not None:
        expected = CodeState.QUARANTINED
        _set_code_state(session, claim, rejecting, CodeState.DELIVERED, expect=expected)
    for claimed in rejecting:
        claimed.decision = CodeDecision.REJECTED
        claimed.decision_rule = rules_of[claimed.id]
        claimed.decided_at = now
        claimed.open = False


def _approve_codes(
    session: Session, claim: Claim, approving: list[ClaimCode], now: datetime
) -> None:
    """Voided, each given its one remedy (carried out by ``fulfil``)."""
    # Undecided codes are quarantined exactly when the claim was escalated (escalation
    # quarantines the codes undecided then, and decisions only take codes out of that set).
    expected = CodeState.QUARANTINED if claim.escalated_at is not None else CodeState.DELIVERED
    _set_code_state(session, claim, approving, CodeState.VOIDED, expect=expected)
    for claimed in approving:
        claimed.decision = CodeDecision.APPROVED
        claimed.decided_at = now
        claimed.remedy = _new_remedy(session, claim, claimed)


def _check_codes(claim: Claim, approving: list[ClaimCode], rejecting: list[ClaimCode]) -> None:
    named = [claimed.id for claimed in approving + rejecting]
    if not named:
        raise InvalidInputError("name at least one code to approve or reject")
    if len(set(named)) != len(named):
        twice = next(c for c in approving + rejecting if named.count(c.id) > 1)
        raise InvalidInputError(
            f"code {position_of(claim, twice)} ({twice.masked}) is named twice",
            pointer="#/reject" if twice in rejecting else "#/approve",
        )
    decided = [c for c in approving + rejecting if c.decision is not None]
    if decided:
        listed = ", ".join(
            f"code {position_of(claim, c)} ({c.masked}) was already {c.decision}" for c in decided
        )
        raise ClaimStateError(f"claim {claim.public_id}: {listed}; nothing was changed")


def _check_override(approving: list[ClaimCode], override: bool) -> list[ClaimCode]:
    """The approved codes the policy did not find eligible: refused unless ``override`` (the
    operator takes responsibility; the reason says why), so that nothing is paid for a
    not-covered code by a slip of the hand."""
    doubtful = [c for c in approving if c.verdict != rules.ELIGIBLE]
    if doubtful and not override:
        listed = ", ".join(f"{c.masked} ({c.rule or c.verdict})" for c in doubtful)
        raise ClaimNotEligibleError(
            f"not every code is eligible under the policy: {listed}; reject it, ask for "
            "information, or approve with override and a reason",
            codes=[c.masked for c in doubtful],
        )
    return doubtful


def _rejection_rules(claim: Claim, rejecting: list[ClaimCode], rule: str | None) -> dict[int, str]:
    """The not-covered rule each rejected code is refused under: ``rule`` if named, else the
    code's own verdict rule (a code the policy covered or could not yet judge needs one named)."""
    policy = rules.POLICIES[claim.policy_version]
    not_covered = sorted(r.id for r in policy.rules.values() if not r.covered)
    chosen = (rule or "").strip() or None
    if chosen is not None and not rejecting:
        raise InvalidInputError("a rule says why codes are rejected: reject one", pointer="#/rule")
    if chosen is not None and (chosen not in policy.rules or policy.rules[chosen].covered):
        raise InvalidInputError(
            f"{chosen!r} is not a not-covered rule: one of {', '.join(not_covered)}",
            pointer="#/rule",
        )
    result = {}
    for claimed in rejecting:
        own = claimed.rule if claimed.verdict == rules.NOT_COVERED else None
        if chosen is None and own is None:
            raise InvalidInputError(
                f"name the rule code {claimed.masked} is rejected under (its verdict is "
                f"{claimed.verdict}): one of {', '.join(not_covered)}",
                pointer="#/rule",
            )
        result[claimed.id] = chosen or own or ""
    return result


def _new_remedy(session: Session, claim: Claim, claimed: ClaimCode) -> Remedy:
    """The code's one remedy, ever (``claim_remedies.code_id`` is unique)."""
    try:
        with session.begin_nested():
            remedy = Remedy(claim_code_id=claimed.id, code_id=claimed.code_id, kind=claim.remedy)
            session.add(remedy)
    except IntegrityError:
        raise CodeAlreadyRemediedError(
            f"code {claimed.masked} was already replaced or refunded"
        ) from None
    return remedy


def _conclude(claim: Claim, reason: str, now: datetime) -> None:
    """Every code is decided: approved if any code was, else rejected."""
    claim.decided_at = now
    claim.decision_reason = reason
    if any(c.decision == CodeDecision.APPROVED for c in claim.codes):
        move(claim, ClaimStatus.APPROVED)
        policy = rules.POLICIES[claim.policy_version]
        claim.remedy_due_at = now + policy.sla.remedy
        claim.due_at = claim.remedy_due_at
        return
    move(claim, ClaimStatus.REJECTED)
    claim.decision_rule = claim.codes[0].decision_rule
    close(claim, now)


def _decision_details(
    claim: Claim,
    approving: list[ClaimCode],
    rejecting: list[ClaimCode],
    rule: str | None,
    doubtful: list[ClaimCode],
) -> dict[str, Any]:
    """What the audit log keeps of one decision: which codes went which way, under which rule."""
    details: dict[str, Any] = {
        "codes": [
            {
                "position": position_of(claim, c),
                "code": c.masked,
                "decision": c.decision,
                "rule": c.decision_rule,
            }
            for c in sorted(approving + rejecting, key=lambda c: c.id)
        ],
        "complete": not undecided(claim),
    }
    if approving:
        details["remedy"] = claim.remedy
        details["override"] = [c.masked for c in doubtful] or None
    if rejecting:
        used = {c.decision_rule for c in rejecting}
        details["rule"] = rule or (used.pop() if len(used) == 1 else None)
    return details


def _set_code_state(
    session: Session,
    claim: Claim,
    codes: list[ClaimCode],
    state: CodeState,
    *,
    expect: CodeState,
) -> None:
    """Move these codes of the claim, all of which must be in ``expect`` (else someone raced
    us)."""
    code_ids = [claimed.code_id for claimed in codes]
    if not stock.move_codes(session, code_ids, state, expect=expect):
        raise ClaimStateError(
            f"claim {claim.public_id}: its codes are no longer {expect}; nothing was changed"
        )
