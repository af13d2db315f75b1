"""What an operator reads beside the evidence to decide a claim, code by code: where the code
came from and when it went out, when the partner first saw it, what the policy said of it (the
rule's id and its text), what became of it in other claims, and how its batch has fared.

A pure read: nothing here changes anything.

How a code's first reveal is known: every time a partner is shown codes the orders service
writes a ``codes.reveal`` audit event about the order: the API's ``GET /orders/{id}/codes``
and the portal's order page show all of the order's codes (the event names the API key, or
the portal member), and the portal's claim form shows one (its ``details`` name the code's
``position`` in the order). A code was first revealed by the earliest event that showed all the
order's codes or that one.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from codeshelf.audit import service as audit
from codeshelf.claims import policy as rules
from codeshelf.claims.models import Claim, ClaimCode, Remedy
from codeshelf.orders.models import Order
from codeshelf.stock import service as stock

REVEAL = "codes.reveal"  # the orders service's audit action for codes shown to a partner


@dataclass(frozen=True)
class PolicyRule:
    """A rule of the claim's policy as the screen shows it: "rule R: text"."""

    id: str
    text: str
    covered: bool

    @classmethod
    def of(cls, policy: rules.Policy, rule_id: str | None) -> PolicyRule | None:
        if rule_id is None:
            return None
        rule = policy.rules[rule_id]
        return cls(rule.id, rule.text, rule.covered)


@dataclass(frozen=True)
class Reveal:
    """One time the partner was shown the code."""

    at: datetime
    actor: str  # partner:ptr_… (through the API) or member:mem_… (a portal member)
    api_key_id: str | None  # the API key that fetched it, if through the API
    whole_order: bool  # all of the order's codes, or this one alone (the portal's claim form)


@dataclass(frozen=True)
class OtherClaim:
    """Another claim that named the same code (a code is in one open claim at a time, so it
    is usually an earlier one, rejected or cancelled: a changed story?)."""

    claim_id: str
    status: str
    decision: str | None  # that claim's decision on this code, if decided code by code
    decision_rule: str | None
    submitted_at: datetime


@dataclass(frozen=True)
class BatchRecord:
    """The code's batch, and how it has fared."""

    reference: str
    supplier: str | None
    imported_at: datetime
    other_claims: tuple[str, ...]  # ids of the other claims naming a code of this batch
    claimed_codes: int  # distinct codes of the batch named in any claim (this one included)
    defective: int  # codes of the batch confirmed defective: approved, refunded or replaced

    @property
    def claims(self) -> int:
        """How many other claims the batch has had."""
        return len(self.other_claims)


@dataclass(frozen=True)
class CodeHistory:
    """One claimed code, everything the operator weighs about it."""

    position: int  # its place in the claim (1, 2, …): how a decision names it
    masked: str
    sku: str
    batch: BatchRecord
    delivered_at: datetime | None
    state: str  # delivered, quarantined (escalated), voided (remedied)
    reveals: tuple[Reveal, ...]  # every time the partner was shown this code, oldest first
    order_reveals: int  # how often any of the order's codes were revealed
    order_first_revealed_at: datetime | None
    verdict: str
    classification: str
    verdict_rule: PolicyRule | None  # the rule that decided the verdict (None: needs evidence)
    missing: tuple[str, ...]
    decision: str | None
    decision_rule: PolicyRule | None  # a rejected code's not-covered rule
    decided_at: datetime | None
    other_claims: tuple[OtherClaim, ...]  # in the order they were filed

    @property
    def first_revealed(self) -> Reveal | None:
        """When (and by whom) the partner first saw the code; None: never revealed."""
        return self.reveals[0] if self.reveals else None


def history(session: Session, claim: Claim) -> list[CodeHistory]:
    """For each code of the claim, in its order: where it came from, when it went out and was
    first revealed, what the policy and the operator said of it, its other claims and its
    batch's record."""
    policy = rules.POLICIES[claim.policy_version]
    order = session.get_one(Order, claim.order_id)
    order_events = [
        _Shown(e.occurred_at, e.actor, e.api_key_public_id, (e.details or {}).get("position"))
        for e in audit.events_about(session, order.public_id, REVEAL)
    ]
    places = stock.delivery_positions(session, [item.id for item in order.items])
    origins = stock.provenance(session, [claimed.code_id for claimed in claim.codes])
    others = _other_claims(session, claim)
    batches: dict[int, BatchRecord] = {}
    result = []
    for position, claimed in enumerate(claim.codes, start=1):
        origin = origins[claimed.code_id]
        if origin.batch_id not in batches:
            batches[origin.batch_id] = _batch_record(session, claim, origin)
        result.append(
            CodeHistory(
                position=position,
                masked=claimed.masked,
                sku=origin.sku,
                batch=batches[origin.batch_id],
                delivered_at=origin.delivered_at,
                state=origin.state,
                reveals=_reveals_of(order_events, places.get(claimed.code_id)),
                order_reveals=len(order_events),
                order_first_revealed_at=order_events[0].at if order_events else None,
                verdict=claimed.verdict,
                classification=claimed.classification,
                verdict_rule=PolicyRule.of(policy, claimed.rule),
                missing=tuple(claimed.missing),
                decision=claimed.decision,
                decision_rule=PolicyRule.of(policy, claimed.decision_rule),
                decided_at=claimed.decided_at,
                other_claims=others.get(claimed.code_id, ()),
            )
        )
    return result


@dataclass(frozen=True)
class _Shown:
    """A reveal of the order: of all its codes, or of the one at ``position``."""

    at: datetime
    actor: str
    api_key_id: str | None
    position: int | None


def _reveals_of(events: list[_Shown], position: int | None) -> tuple[Reveal, ...]:
    """The order's reveals that showed the code at ``position``: those of all the order's
    codes, and those of that code alone."""
    return tuple(
        Reveal(e.at, e.actor, e.api_key_id, whole_order=e.position is None)
        for e in events
        if e.position is None or e.position == position
    )


def _other_claims(session: Session, claim: Claim) -> dict[int, tuple[OtherClaim, ...]]:
    rows = session.execute(
        select(
            ClaimCode.code_id,
            Claim.public_id,
            Claim.status,
            ClaimCode.decision,
            ClaimCode.decision_rule,
            Claim.submitted_at,
        )
        .join(Claim, Claim.id == ClaimCode.claim_id)
        .where(
            ClaimCode.code_id.in_([claimed.code_id for claimed in claim.codes]),
            Claim.id != claim.id,
        )
        .order_by(Claim.id)
    )
    found: dict[int, list[OtherClaim]] = defaultdict(list)
    for code_id, claim_id, status, decision, rule, submitted_at in rows:
        found[code_id].append(OtherClaim(claim_id, status, decision, rule, submitted_at))
    return {code_id: tuple(claims) for code_id, claims in found.items()}


def _batch_record(session: Session, claim: Claim, origin: stock.Provenance) -> BatchRecord:
    of_batch = stock.codes_of_batch(origin.batch_id)
    other_claims = session.scalars(
        select(Claim.public_id)
        .join(ClaimCode, ClaimCode.claim_id == Claim.id)
        .where(ClaimCode.code_id.in_(of_batch), Claim.id != claim.id)
        .distinct()
    ).all()
    claimed_codes = session.scalar(
        select(func.count(func.distinct(ClaimCode.code_id))).where(ClaimCode.code_id.in_(of_batch))
    )
    defective = session.scalar(select(func.count()).where(Remedy.code_id.in_(of_batch)))
    return BatchRecord(
        reference=origin.batch,
        supplier=origin.supplier,
        imported_at=origin.imported_at,
        other_claims=tuple(sorted(other_claims)),
        claimed_codes=int(claimed_codes or 0),
        defective=int(defective or 0),
    )
