"""A claim's moves along its lifecycle, and the trail each leaves: the audit log and the
claim.updated event (webhook and events feed), in the change's own transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from codeshelf.audit import service as audit
from codeshelf.claims import policy as rules
from codeshelf.claims.models import (
    CLAIM_PREFIX,
    TRANSITIONS,
    Claim,
    ClaimCode,
    ClaimStatus,
    CodeDecision,
    Remedy,
    RemedyKind,
    RemedyState,
)
from codeshelf.claims.service.errors import ClaimNotFoundError, ClaimStateError
from codeshelf.claims.service.inputs import Actor
from codeshelf.kit.ids import is_public_id
from codeshelf.orders import service as orders
from codeshelf.partners.models import Partner
from codeshelf.webhooks import service as webhooks


def get_claim(session: Session, claim_public_id: str, partner_id: int | None = None) -> Claim:
    """A claim by id; with ``partner_id``, only that partner's (others look like missing)."""
    if not is_public_id(CLAIM_PREFIX, claim_public_id):
        raise ClaimNotFoundError(f"no claim {claim_public_id!r}")
    query = select(Claim).where(Claim.public_id == claim_public_id)
    if partner_id is not None:
        query = query.where(Claim.partner_id == partner_id)
    claim = session.scalar(query)
    if claim is None:
        raise ClaimNotFoundError(f"no claim {claim_public_id}")
    return claim


def locked_claim(session: Session, claim_public_id: str, partner_id: int | None = None) -> Claim:
    """The claim, its row locked until commit (PostgreSQL; SQLite writes one at a time)."""
    claim = get_claim(session, claim_public_id, partner_id)
    # The refresh reloads its eagerly loaded codes (and their remedies) too: a decision sees the
    # codes as the transaction that held the lock before it left them.
    session.refresh(claim, with_for_update=True)
    return claim


def position_of(claim: Claim, claimed: ClaimCode) -> int:
    """The code's place in its claim (1, 2, …, as the claim lists its codes): how the operator
    names it in a decision, and how a refund is named without a global counter."""
    return [c.id for c in claim.codes].index(claimed.id) + 1


def undecided(claim: Claim) -> list[ClaimCode]:
    """The claim's codes still waiting for the operator's decision."""
    return [claimed for claimed in claim.codes if claimed.decision is None]


def move(claim: Claim, status: str) -> None:
    if status not in TRANSITIONS[claim.status]:
        raise ClaimStateError(f"claim {claim.public_id} is {claim.status}; it cannot be {status}")
    claim.status = status


def close(claim: Claim, now: datetime) -> None:
    claim.due_at = None
    claim.updated_at = now
    for claimed in claim.codes:
        claimed.open = False


def notify(session: Session, claim: Claim) -> None:
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
            "codes": [
                {
                    "position": position,
                    "code": claimed.masked,
                    "decision": claimed.decision,
                    "decision_rule": claimed.decision_rule,
                }
                for position, claimed in enumerate(claim.codes, start=1)
            ],
        },
    )


def audit_who(actor: Actor) -> dict[str, Any]:
    return {
        "actor": actor.name,
        "partner_public_id": actor.partner_public_id,
        "api_key_public_id": actor.key_public_id,
    }


def record_decision(
    session: Session, claim: Claim, actor: Actor, action: str, reason: str | None, **details: Any
) -> None:
    partner = partner_public_id(session, claim)
    who = audit_who(actor)
    # On the partner's own trail too, whoever decided: it is their claim.
    who["partner_public_id"] = who["partner_public_id"] or partner
    audit.record(
        session,
        **who,
        action=f"claim.{action}",
        subject=claim.public_id,
        details={"reason": reason, "partner": partner, **details},
    )


def partner_public_id(session: Session, claim: Claim) -> str:
    return session.get_one(Partner, claim.partner_id).public_id


def remedies_of(claim: Claim) -> list[Remedy]:
    return [claimed.remedy for claimed in claim.codes if claimed.remedy is not None]


def order_public_ids(session: Session, claim: Claim) -> dict[int, str]:
    """The public ids of the claim's order and its replacement orders, by internal id."""
    ids = {claim.order_id} | {
        r.replacement_order_id for r in remedies_of(claim) if r.replacement_order_id
    }
    return orders.public_ids(session, ids)


def customer_message(claim: Claim) -> str:
    """One sentence a reseller can show its customer for the claim's state (two when some of
    its codes were approved and others not)."""
    policy = rules.POLICIES[claim.policy_version]
    if claim.status in (ClaimStatus.SUBMITTED, ClaimStatus.TRIAGED):
        return "We have received your report about this code and are checking it."
    if claim.status == ClaimStatus.NEEDS_INFO:
        missing = sorted({item for claimed in undecided(claim) for item in claimed.missing})
        wanted = [policy.evidence_labels[item] for item in missing] or ["a few more details"]
        return f"To check your code we need {' and '.join(wanted)}."
    if claim.status == ClaimStatus.ESCALATED:
        return (
            "We are investigating this code with the card issuer; this can take up to "
            f"{policy.sla.upstream_business_days} business days."
        )
    if claim.status == ClaimStatus.REJECTED:
        return f"We could not approve your report. {' '.join(_refusals(claim, policy))}"
    if claim.status == ClaimStatus.CANCELLED:
        return "This report was withdrawn."
    approved = _approved_message(claim)
    rejected = [c for c in claim.codes if c.decision == CodeDecision.REJECTED]
    if not rejected:
        return approved
    return (
        f"{approved} We could not approve {len(rejected)} of the {len(claim.codes)} codes: "
        f"{' '.join(_refusals(claim, policy))}"
    )


def _approved_message(claim: Claim) -> str:
    remedies = remedies_of(claim)
    if any(remedy.state == RemedyState.WAITING for remedy in remedies):
        return "Your report was approved; a replacement code will be sent to you shortly."
    if remedies and all(remedy.kind == RemedyKind.REFUND for remedy in remedies):
        return "Your report was approved and the price of the code has been refunded."
    return "Your report was approved and a replacement code has been issued."


def _refusals(claim: Claim, policy: rules.Policy) -> list[str]:
    """Why codes were refused, once per rule, in the order of the codes (a claim rejected
    before codes were decided one by one names its rule on the claim only)."""
    named = [c.decision_rule or "" for c in claim.codes if c.decision_rule]
    return [
        policy.rules[rule].customer_message
        for rule in dict.fromkeys(named or [claim.decision_rule or ""])
    ]
