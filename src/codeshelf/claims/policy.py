"""The code-support policy as data, and the pure function that judges a claimed code under it.

A policy version is a ``Policy`` value: its rules (each with a stable id, the text an operator
reads and the sentence a reseller can show its customer), the claim window, the evidence each
kind of claim needs, and the SLA clocks. ``evaluate`` reads only from the policy it is given, so a
v1.2 is a new ``Policy`` added to ``POLICIES``; every claim records the version it was judged
under. The verdict is a recommendation: an operator decides.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

# What the reseller's customer saw when redeeming.
INVALID = "invalid"  # PSN does not recognise the code
ALREADY_REDEEMED = "already_redeemed"  # PSN says the code is already in use
WRONG_REGION = "wrong_region"  # the code belongs to another region than the SKU ordered
TECHNICAL_FAILURE = "technical_failure"  # printing error, serial collision, other upstream defect
NOT_DELIVERED = "not_delivered"  # the code was not received or is not visible
ACCOUNT_RESTRICTED = "account_restricted"  # PSN refused because of the account itself
PROBLEMS = (
    INVALID,
    ALREADY_REDEEMED,
    WRONG_REGION,
    TECHNICAL_FAILURE,
    NOT_DELIVERED,
    ACCOUNT_RESTRICTED,
)

# Classification (seed 001): which track a claim follows.
DELIVERY = "delivery"
CODE = "code"
CLASSIFICATIONS = (DELIVERY, WRONG_REGION, CODE)

ELIGIBLE = "eligible"
NOT_COVERED = "not_covered"
NEEDS_EVIDENCE = "needs_evidence"
VERDICTS = (ELIGIBLE, NOT_COVERED, NEEDS_EVIDENCE)

# Evidence items a claimed code may be missing.
ERROR_EVIDENCE = "error_evidence"  # the PSN error code or a screenshot of the error
ACCOUNT_REGION = "account_region"
ATTEMPTED_AT = "attempted_at"
# ...and each in plain words, for people (the portal).
EVIDENCE_TEXT = {
    ERROR_EVIDENCE: "the PSN error code or a screenshot of the error",
    ACCOUNT_REGION: "the account's region",
    ATTEMPTED_AT: "the time of the attempt",
}
CODE_REGION = "code_region"  # the region PSN reported for a wrong-region code
EVIDENCE_ITEMS = (ERROR_EVIDENCE, ACCOUNT_REGION, ATTEMPTED_AT, CODE_REGION)

# Sony error codes look like WS-37432-9, NP-34957-8, CE-108255-1, C2-13828-2, E-8200012C (the
# last has hex digits and no check digit).
PSN_ERROR_CODE = re.compile(r"(?:[A-Z][A-Z0-9]{1,2}-[0-9]{5,6}-[0-9]|E-[0-9A-F]{8})")
# Customers' clocks and reports are rounded: an attempt this close to delivery, or to now, is
# taken as possible.
CLOCK_TOLERANCE = timedelta(minutes=5)


@dataclass(frozen=True)
class Rule:
    id: str
    covered: bool
    text: str  # what the rule says, for the operator
    customer_message: str  # why, in words a reseller can pass on to its customer


@dataclass(frozen=True)
class Sla:
    triage: timedelta  # from submission to triage
    remedy: timedelta  # from verification (approval) to the remedy
    upstream_business_days: int  # for claims escalated to the upstream supplier


@dataclass(frozen=True)
class Policy:
    version: str
    effective_from: datetime
    window: timedelta  # a claim must be filed within this long after delivery
    rules: dict[str, Rule]
    covered_by: dict[str, str]  # problem -> the rule that covers it
    evidence: dict[str, tuple[str, ...]]  # classification -> evidence items required
    sla: Sla
    evidence_labels: dict[str, str] = field(default_factory=dict)  # item -> customer wording

    def rule(self, rule_id: str) -> Rule:
        return self.rules[rule_id]


@dataclass(frozen=True)
class CodeFacts:
    """Everything the policy looks at for one claimed code."""

    problem: str
    sku_region: str  # the region of the product on the order
    delivered_at: datetime
    submitted_at: datetime
    account_region: str | None = None
    attempted_at: datetime | None = None
    error_code: str | None = None
    has_screenshot: bool = False
    code_region: str | None = None
    exposed_publicly: bool = False


@dataclass(frozen=True)
class Verdict:
    verdict: str
    classification: str
    rule: str | None = None  # the rule that decided (eligible or not_covered)
    missing: tuple[str, ...] = ()  # evidence items still needed (needs_evidence)


def classify(problem: str) -> str:
    if problem == NOT_DELIVERED:
        return DELIVERY
    if problem == WRONG_REGION:
        return WRONG_REGION
    return CODE


def impossible_facts(facts: CodeFacts) -> list[tuple[str, str]]:
    """Facts that cannot be true: each is (field, reason). Such a claim is refused as input."""
    found = []
    if facts.attempted_at is not None and facts.attempted_at < facts.delivered_at - CLOCK_TOLERANCE:
        found.append((ATTEMPTED_AT, "the redemption attempt cannot precede the code's delivery"))
    if facts.attempted_at is not None and facts.attempted_at > facts.submitted_at + CLOCK_TOLERANCE:
        found.append((ATTEMPTED_AT, "the redemption attempt cannot be in the future"))
    if facts.error_code is not None and not PSN_ERROR_CODE.fullmatch(facts.error_code):
        found.append(("error_code", "a PSN error code looks like WS-37432-9"))
    return found


def evaluate(policy: Policy, facts: CodeFacts) -> Verdict:
    """Judge one claimed code. The first rule that applies decides, in this order:

    the claim window; account restrictions; public exposure; missing evidence; then region
    fit and the problem reported. ``facts`` must pass ``impossible_facts``.
    """
    classification = classify(facts.problem)

    def not_covered(rule_id: str) -> Verdict:
        return Verdict(NOT_COVERED, classification, rule=rule_id)

    if facts.submitted_at - facts.delivered_at > policy.window:
        return not_covered("not_covered.window")
    if facts.problem == ACCOUNT_RESTRICTED:
        return not_covered("not_covered.account_restriction")
    if facts.exposed_publicly:
        return not_covered("not_covered.public_exposure")
    missing = missing_evidence(policy, facts, classification)
    if missing:
        return Verdict(NEEDS_EVIDENCE, classification, missing=missing)
    if classification == DELIVERY:
        return not_covered("not_covered.delivered")
    if facts.account_region != facts.sku_region:
        # The customer redeemed on an account of another region than the code's correct one
        # (for a wrong-region claim: bought a SKU for another region than their account's).
        return not_covered("not_covered.account_region")
    if classification == WRONG_REGION and facts.code_region == facts.sku_region:
        return not_covered("not_covered.region_matches_order")
    return Verdict(ELIGIBLE, classification, rule=policy.covered_by[facts.problem])


def missing_evidence(policy: Policy, facts: CodeFacts, classification: str) -> tuple[str, ...]:
    present = {
        ERROR_EVIDENCE: facts.error_code is not None or facts.has_screenshot,
        ACCOUNT_REGION: facts.account_region is not None,
        ATTEMPTED_AT: facts.attempted_at is not None,
        CODE_REGION: facts.code_region is not None,
    }
    return tuple(item for item in policy.evidence[classification] if not present[item])


def _rules(*rules: Rule) -> dict[str, Rule]:
    return {rule.id: rule for rule in rules}


V1_1 = Policy(
    version="1.1",
    effective_from=datetime.fromisoformat("2026-01-18T00:00:00+00:00"),
    window=timedelta(hours=168),
    rules=_rules(
        Rule(
            "covered.invalid",
            True,
            "Invalid code: rejected by PSN as not recognised.",
            "The code was not recognised by PlayStation Store.",
        ),
        Rule(
            "covered.already_redeemed",
            True,
            "Already-redeemed code, reported as in use when first redeemed on an account of "
            "the code's region.",
            "The code was reported as already used the first time it was redeemed.",
        ),
        Rule(
            "covered.wrong_region",
            True,
            "Wrong-region code: the code's region differs from the region of the SKU ordered.",
            "The code delivered was for a different region than the one ordered.",
        ),
        Rule(
            "covered.technical_failure",
            True,
            "Technical redemption failure caused by an upstream defect (printing error, serial "
            "collision).",
            "The code could not be redeemed because of a defect on the issuer's side.",
        ),
        Rule(
            "not_covered.account_region",
            False,
            "Redemption attempted on a PSN account registered in another region than the code's.",
            "The code was used on a PlayStation account from another region; codes only work "
            "on accounts of their own region.",
        ),
        Rule(
            "not_covered.public_exposure",
            False,
            "The code was exposed publicly (screenshot, live stream, public chat, marketplace).",
            "The code was shared publicly, so it cannot be replaced.",
        ),
        Rule(
            "not_covered.window",
            False,
            "The claim was filed more than 7 days (168 hours) after the order was delivered.",
            "Codes can only be reported within 7 days of delivery; this report came too late.",
        ),
        Rule(
            "not_covered.account_restriction",
            False,
            "Restrictions on the PSN account itself (region change cooldown, hold-to-review, "
            "Sony enforcement).",
            "PlayStation refused the code because of a restriction on the account, not the code; "
            "please contact PlayStation Support.",
        ),
        Rule(
            "not_covered.delivered",
            False,
            "Delivery problem: the code was delivered on the order and can be retrieved again; "
            "it is re-sent, not replaced.",
            "Your code was delivered and can be shown to you again.",
        ),
        Rule(
            "not_covered.evidence_missing",
            False,
            "The evidence the policy requires (section 3: error code or screenshot, account "
            "region, time of the attempt) was asked for and not provided.",
            "We could not check the code because the information we asked for did not arrive.",
        ),
        Rule(
            "not_covered.region_matches_order",
            False,
            "Reported as wrong-region, but the code's region is the region ordered.",
            "The code is for the region that was ordered.",
        ),
    ),
    covered_by={
        INVALID: "covered.invalid",
        ALREADY_REDEEMED: "covered.already_redeemed",
        WRONG_REGION: "covered.wrong_region",
        TECHNICAL_FAILURE: "covered.technical_failure",
    },
    evidence={
        CODE: (ERROR_EVIDENCE, ACCOUNT_REGION, ATTEMPTED_AT),
        WRONG_REGION: (ERROR_EVIDENCE, ACCOUNT_REGION, ATTEMPTED_AT, CODE_REGION),
        DELIVERY: (),
    },
    sla=Sla(triage=timedelta(hours=24), remedy=timedelta(hours=48), upstream_business_days=7),
    evidence_labels={
        ERROR_EVIDENCE: "the PlayStation error code or a screenshot of the error",
        ACCOUNT_REGION: "the region of the PlayStation account",
        ATTEMPTED_AT: "when the code was tried",
        CODE_REGION: "the region PlayStation showed for the code",
    },
)

POLICIES = {V1_1.version: V1_1}
CURRENT = V1_1
