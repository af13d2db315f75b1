"""The code-support policy v1.1 (seed 000) as examples and as properties.

The property tests compare ``evaluate`` with a restatement of the policy written here from the
policy text, with its own literals, so they do not lean on the module's internals.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codeshelf.claims.policy import (
    ACCOUNT_RESTRICTED,
    ALREADY_REDEEMED,
    CLASSIFICATIONS,
    CLOCK_TOLERANCE,
    CODE,
    CURRENT,
    DELIVERY,
    ELIGIBLE,
    EVIDENCE_ITEMS,
    INVALID,
    NEEDS_EVIDENCE,
    NOT_COVERED,
    NOT_DELIVERED,
    POLICIES,
    PROBLEMS,
    TECHNICAL_FAILURE,
    V1_1,
    WRONG_REGION,
    CodeFacts,
    Policy,
    Verdict,
    classify,
    evaluate,
    impossible_facts,
)

DELIVERED = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SEVEN_DAYS = timedelta(hours=168)
MICROSECOND = timedelta(microseconds=1)

# A complete, in-window claim for an invalid code on an account of the SKU's region.
BASE = CodeFacts(
    problem=INVALID,
    sku_region="US",
    delivered_at=DELIVERED,
    submitted_at=DELIVERED + timedelta(hours=2),
    account_region="US",
    attempted_at=DELIVERED + timedelta(hours=1),
    error_code="WS-37432-9",
)

# A complete, in-window wrong-region claim: a US SKU was ordered, PSN says the code is GB.
WRONG_REGION_BASE = replace(BASE, problem=WRONG_REGION, code_region="GB")


def judge(facts: CodeFacts) -> Verdict:
    assert impossible_facts(facts) == []
    return evaluate(V1_1, facts)


# --- One example per rule of v1.1 -------------------------------------------------------------


def test_covered_invalid() -> None:
    """'Invalid codes — rejected by PSN as not recognised.'"""
    assert judge(BASE) == Verdict(ELIGIBLE, CODE, rule="covered.invalid")


def test_covered_already_redeemed() -> None:
    """'Already-redeemed codes — reported as already in use when the partner redeems on a
    matching-region account.'"""
    verdict = judge(replace(BASE, problem=ALREADY_REDEEMED))
    assert verdict == Verdict(ELIGIBLE, CODE, rule="covered.already_redeemed")


def test_covered_wrong_region() -> None:
    """'Wrong-region codes — any SKU delivered that does not match the region label on the
    order.'"""
    verdict = judge(WRONG_REGION_BASE)
    assert verdict == Verdict(ELIGIBLE, WRONG_REGION, rule="covered.wrong_region")


def test_covered_technical_failure() -> None:
    """'Technical redemption failures caused by upstream defects.'"""
    verdict = judge(replace(BASE, problem=TECHNICAL_FAILURE))
    assert verdict == Verdict(ELIGIBLE, CODE, rule="covered.technical_failure")


def test_not_covered_account_region() -> None:
    """'Attempts to redeem a region-locked code on a PSN account registered in a different
    region.'"""
    verdict = judge(replace(BASE, account_region="TR"))
    assert verdict == Verdict(NOT_COVERED, CODE, rule="not_covered.account_region")


def test_not_covered_account_region_for_a_wrong_region_claim() -> None:
    """A TR account that bought a US SKU is not a wrong-region delivery."""
    verdict = judge(replace(WRONG_REGION_BASE, account_region="TR", code_region="TR"))
    assert verdict == Verdict(NOT_COVERED, WRONG_REGION, rule="not_covered.account_region")


def test_not_covered_public_exposure() -> None:
    """'Codes exposed publicly by the partner (screenshot / live-stream / copy-paste to a
    public chat).'"""
    verdict = judge(replace(BASE, exposed_publicly=True))
    assert verdict == Verdict(NOT_COVERED, CODE, rule="not_covered.public_exposure")


def test_not_covered_window() -> None:
    """'Claims filed more than 7 days after the order was delivered.'"""
    verdict = judge(replace(BASE, submitted_at=DELIVERED + timedelta(days=8)))
    assert verdict == Verdict(NOT_COVERED, CODE, rule="not_covered.window")


def test_not_covered_account_restriction() -> None:
    """'Promotional restrictions on the PSN account itself (region change cooldowns,
    hold-to-review states, Sony enforcement actions).'"""
    verdict = judge(replace(BASE, problem=ACCOUNT_RESTRICTED))
    assert verdict == Verdict(NOT_COVERED, CODE, rule="not_covered.account_restriction")


def test_not_covered_delivered() -> None:
    """A code reported as not delivered was delivered on the order: it is re-sent."""
    bare = CodeFacts(
        problem=NOT_DELIVERED,
        sku_region="US",
        delivered_at=DELIVERED,
        submitted_at=DELIVERED + timedelta(hours=2),
    )
    assert judge(bare) == Verdict(NOT_COVERED, DELIVERY, rule="not_covered.delivered")


def test_not_covered_region_matches_order() -> None:
    """Reported as wrong-region, but PSN shows the code is for the region ordered."""
    verdict = judge(replace(WRONG_REGION_BASE, code_region="US"))
    assert verdict == Verdict(NOT_COVERED, WRONG_REGION, rule="not_covered.region_matches_order")


EXAMPLED_RULES = {
    "covered.invalid",
    "covered.already_redeemed",
    "covered.wrong_region",
    "covered.technical_failure",
    "not_covered.account_region",
    "not_covered.public_exposure",
    "not_covered.window",
    "not_covered.account_restriction",
    "not_covered.delivered",
    "not_covered.region_matches_order",
    # An operator's decision, never a verdict: shown in test_admin_api (a needs_info claim the
    # partner never answered).
    "not_covered.evidence_missing",
}


def test_every_rule_has_an_example() -> None:
    assert set(V1_1.rules) == EXAMPLED_RULES


def test_rule_ids_match_their_coverage() -> None:
    for rule_id, rule in V1_1.rules.items():
        assert rule.id == rule_id
        assert rule.covered == rule_id.startswith("covered.")
        assert rule.text and rule.customer_message
    assert set(V1_1.covered_by.values()) == {r for r in V1_1.rules if r.startswith("covered.")}
    assert set(V1_1.evidence) == set(CLASSIFICATIONS)
    assert set(V1_1.evidence_labels) == set(EVIDENCE_ITEMS)


# --- Evidence ---------------------------------------------------------------------------------


@pytest.mark.parametrize("problem", [INVALID, ALREADY_REDEEMED, TECHNICAL_FAILURE])
def test_code_claim_without_evidence_needs_all_three_items(problem: str) -> None:
    bare = CodeFacts(
        problem=problem,
        sku_region="US",
        delivered_at=DELIVERED,
        submitted_at=DELIVERED + timedelta(hours=2),
    )
    assert judge(bare) == Verdict(
        NEEDS_EVIDENCE, CODE, missing=("error_evidence", "account_region", "attempted_at")
    )


def test_wrong_region_claim_without_evidence_also_needs_the_code_region() -> None:
    bare = CodeFacts(
        problem=WRONG_REGION,
        sku_region="US",
        delivered_at=DELIVERED,
        submitted_at=DELIVERED + timedelta(hours=2),
    )
    assert judge(bare) == Verdict(
        NEEDS_EVIDENCE,
        WRONG_REGION,
        missing=("error_evidence", "account_region", "attempted_at", "code_region"),
    )


def test_wrong_region_claim_missing_only_the_code_region() -> None:
    verdict = judge(replace(WRONG_REGION_BASE, code_region=None))
    assert verdict == Verdict(NEEDS_EVIDENCE, WRONG_REGION, missing=("code_region",))


@pytest.mark.parametrize(
    ("field", "missing"),
    [
        ("account_region", ("account_region",)),
        ("attempted_at", ("attempted_at",)),
        ("error_code", ("error_evidence",)),
    ],
)
def test_code_claim_missing_one_item(field: str, missing: tuple[str, ...]) -> None:
    facts = {
        "account_region": replace(BASE, account_region=None),
        "attempted_at": replace(BASE, attempted_at=None),
        "error_code": replace(BASE, error_code=None),
    }[field]
    assert judge(facts) == Verdict(NEEDS_EVIDENCE, CODE, missing=missing)


def test_delivery_claim_needs_no_evidence() -> None:
    assert V1_1.evidence[DELIVERY] == ()
    verdict = judge(replace(BASE, problem=NOT_DELIVERED, error_code=None, account_region=None))
    assert verdict.verdict == NOT_COVERED
    assert verdict.missing == ()


def test_screenshot_alone_is_error_evidence() -> None:
    verdict = judge(replace(BASE, error_code=None, has_screenshot=True))
    assert verdict == Verdict(ELIGIBLE, CODE, rule="covered.invalid")


def test_error_code_alone_is_error_evidence() -> None:
    verdict = judge(replace(BASE, error_code="NP-34957-8", has_screenshot=False))
    assert verdict == Verdict(ELIGIBLE, CODE, rule="covered.invalid")


def test_screenshot_and_error_code_together() -> None:
    verdict = judge(replace(BASE, has_screenshot=True))
    assert verdict == Verdict(ELIGIBLE, CODE, rule="covered.invalid")


# --- The 7-day window -------------------------------------------------------------------------


def test_window_is_168_hours() -> None:
    assert V1_1.window == timedelta(hours=168)


def test_exactly_168_hours_after_delivery_is_inside_the_window() -> None:
    verdict = judge(replace(BASE, submitted_at=DELIVERED + SEVEN_DAYS))
    assert verdict == Verdict(ELIGIBLE, CODE, rule="covered.invalid")


def test_one_microsecond_past_168_hours_is_outside_the_window() -> None:
    verdict = judge(replace(BASE, submitted_at=DELIVERED + SEVEN_DAYS + MICROSECOND))
    assert verdict == Verdict(NOT_COVERED, CODE, rule="not_covered.window")


def test_late_claim_is_refused_even_without_evidence() -> None:
    late = CodeFacts(
        problem=INVALID,
        sku_region="US",
        delivered_at=DELIVERED,
        submitted_at=DELIVERED + timedelta(days=30),
    )
    assert judge(late) == Verdict(NOT_COVERED, CODE, rule="not_covered.window")


# --- Classification ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("problem", "classification"),
    [
        (NOT_DELIVERED, DELIVERY),
        (WRONG_REGION, WRONG_REGION),
        (INVALID, CODE),
        (ALREADY_REDEEMED, CODE),
        (TECHNICAL_FAILURE, CODE),
        (ACCOUNT_RESTRICTED, CODE),
    ],
)
def test_classification(problem: str, classification: str) -> None:
    assert classify(problem) == classification
    assert judge(replace(BASE, problem=problem)).classification == classification


def test_every_problem_is_classified() -> None:
    assert set(PROBLEMS) == {
        INVALID,
        ALREADY_REDEEMED,
        WRONG_REGION,
        TECHNICAL_FAILURE,
        NOT_DELIVERED,
        ACCOUNT_RESTRICTED,
    }


# --- Impossible facts -------------------------------------------------------------------------


def test_attempt_before_delivery_is_impossible() -> None:
    facts = replace(BASE, attempted_at=DELIVERED - CLOCK_TOLERANCE - MICROSECOND)
    assert [field for field, _ in impossible_facts(facts)] == ["attempted_at"]


def test_attempt_after_submission_is_impossible() -> None:
    facts = replace(BASE, attempted_at=BASE.submitted_at + CLOCK_TOLERANCE + MICROSECOND)
    assert [field for field, _ in impossible_facts(facts)] == ["attempted_at"]


def test_a_few_minutes_of_clock_skew_are_tolerated() -> None:
    for moment in (DELIVERED - CLOCK_TOLERANCE, BASE.submitted_at + CLOCK_TOLERANCE):
        assert impossible_facts(replace(BASE, attempted_at=moment)) == []


def test_attempt_at_delivery_or_submission_is_possible() -> None:
    assert impossible_facts(replace(BASE, attempted_at=DELIVERED)) == []
    assert impossible_facts(replace(BASE, attempted_at=BASE.submitted_at)) == []
    assert impossible_facts(replace(BASE, attempted_at=None)) == []


@pytest.mark.parametrize(
    "error_code", ["WS-3743-9", "ws-37432-9", "WS-37432-99", "", "E-8200012", "WS-1234567-1"]
)
def test_malformed_error_codes_are_impossible(error_code: str) -> None:
    facts = replace(BASE, error_code=error_code)
    assert [field for field, _ in impossible_facts(facts)] == ["error_code"]


@pytest.mark.parametrize(
    "error_code",
    ["WS-37432-9", "NP-34957-8", "CE-34878-0", "E-8200012C", "CE-108255-1", "C2-13828-2"],
)
def test_well_formed_error_codes_are_accepted(error_code: str) -> None:
    assert impossible_facts(replace(BASE, error_code=error_code)) == []


def test_impossible_facts_are_all_reported() -> None:
    facts = replace(BASE, attempted_at=DELIVERED - timedelta(hours=1), error_code="nope")
    assert [field for field, _ in impossible_facts(facts)] == ["attempted_at", "error_code"]


# --- Properties: evaluate against a restatement of the policy text ----------------------------

REGIONS = ("US", "TR", "GB", "DE")
SAMPLE_ERROR_CODES = ("WS-37432-9", "NP-34957-8", "CE-34878-0", "E-8200012C")
COVERED_RULE = {
    "invalid": "covered.invalid",
    "already_redeemed": "covered.already_redeemed",
    "wrong_region": "covered.wrong_region",
    "technical_failure": "covered.technical_failure",
}
REQUIRED = {
    "code": ("error_evidence", "account_region", "attempted_at"),
    "wrong_region": ("error_evidence", "account_region", "attempted_at", "code_region"),
    "delivery": (),
}


def classification_of(problem: str) -> str:
    if problem == "not_delivered":
        return "delivery"
    if problem == "wrong_region":
        return "wrong_region"
    return "code"


def absent_evidence(facts: CodeFacts) -> tuple[str, ...]:
    have = {
        "error_evidence": facts.has_screenshot or facts.error_code is not None,
        "account_region": facts.account_region is not None,
        "attempted_at": facts.attempted_at is not None,
        "code_region": facts.code_region is not None,
    }
    return tuple(item for item in REQUIRED[classification_of(facts.problem)] if not have[item])


def is_late(facts: CodeFacts) -> bool:
    return facts.submitted_at - facts.delivered_at > timedelta(days=7)


def expected(facts: CodeFacts) -> Verdict:
    """Policy v1.1, with the precedence documented by ``evaluate``."""
    classification = classification_of(facts.problem)
    if is_late(facts):
        return Verdict("not_covered", classification, rule="not_covered.window")
    if facts.problem == "account_restricted":
        return Verdict("not_covered", classification, rule="not_covered.account_restriction")
    if facts.exposed_publicly:
        return Verdict("not_covered", classification, rule="not_covered.public_exposure")
    missing = absent_evidence(facts)
    if missing:
        return Verdict("needs_evidence", classification, missing=missing)
    if classification == "delivery":
        return Verdict("not_covered", classification, rule="not_covered.delivered")
    if facts.account_region != facts.sku_region:
        return Verdict("not_covered", classification, rule="not_covered.account_region")
    if classification == "wrong_region" and facts.code_region == facts.sku_region:
        return Verdict("not_covered", classification, rule="not_covered.region_matches_order")
    return Verdict("eligible", classification, rule=COVERED_RULE[facts.problem])


@st.composite
def elapsed(draw: st.DrawFn) -> timedelta:
    """Time from delivery to submission, concentrated around the 168-hour boundary."""
    return draw(
        st.one_of(
            st.sampled_from([SEVEN_DAYS - MICROSECOND, SEVEN_DAYS, SEVEN_DAYS + MICROSECOND]),
            st.timedeltas(
                min_value=SEVEN_DAYS - timedelta(seconds=2),
                max_value=SEVEN_DAYS + timedelta(seconds=2),
            ),
            st.timedeltas(min_value=timedelta(0), max_value=SEVEN_DAYS),
            st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=14)),
        )
    )


@st.composite
def code_facts(draw: st.DrawFn) -> CodeFacts:
    delivered_at = draw(
        st.datetimes(
            min_value=datetime(2026, 1, 18),
            max_value=datetime(2027, 12, 31),
            timezones=st.just(UTC),
        )
    )
    submitted_at = delivered_at + draw(elapsed())
    attempted_at = draw(
        st.none()
        | st.sampled_from([delivered_at, submitted_at])
        | st.timedeltas(min_value=timedelta(0), max_value=submitted_at - delivered_at).map(
            lambda offset: delivered_at + offset
        )
    )
    sku_region = draw(st.sampled_from(REGIONS))
    facts = CodeFacts(
        problem=draw(st.sampled_from(PROBLEMS)),
        sku_region=sku_region,
        delivered_at=delivered_at,
        submitted_at=submitted_at,
        # Leaning towards the SKU's region, so that eligible claims are drawn often enough.
        account_region=draw(st.none() | st.just(sku_region) | st.sampled_from(REGIONS)),
        attempted_at=attempted_at,
        error_code=draw(st.none() | st.sampled_from(SAMPLE_ERROR_CODES)),
        has_screenshot=draw(st.booleans()),
        code_region=draw(st.none() | st.sampled_from(REGIONS)),
        exposed_publicly=draw(st.integers(min_value=0, max_value=3)) == 0,
    )
    assert impossible_facts(facts) == []
    return facts


PROPERTY = settings(max_examples=300, deadline=None)


@PROPERTY
@given(code_facts())
def test_evaluate_matches_the_restated_policy(facts: CodeFacts) -> None:
    assert evaluate(V1_1, facts) == expected(facts)


@PROPERTY
@given(code_facts())
def test_late_claims_are_never_eligible(facts: CodeFacts) -> None:
    verdict = evaluate(V1_1, facts)
    if is_late(facts):
        assert verdict.verdict == "not_covered"
        assert verdict.rule == "not_covered.window"


@PROPERTY
@given(code_facts())
def test_claims_on_an_account_of_another_region_are_never_eligible(facts: CodeFacts) -> None:
    if facts.account_region is not None and facts.account_region != facts.sku_region:
        assert evaluate(V1_1, facts).verdict != "eligible"


@PROPERTY
@given(code_facts())
def test_restricted_accounts_and_exposed_codes_are_never_eligible(facts: CodeFacts) -> None:
    verdict = evaluate(V1_1, facts)
    if facts.problem == "account_restricted" or facts.exposed_publicly:
        assert verdict.verdict == "not_covered"
        assert verdict.rule in {
            "not_covered.window",
            "not_covered.account_restriction",
            "not_covered.public_exposure",
        }


@PROPERTY
@given(code_facts())
def test_delivery_claims_are_never_eligible(facts: CodeFacts) -> None:
    if facts.problem == "not_delivered":
        verdict = evaluate(V1_1, facts)
        assert verdict.verdict == "not_covered"
        assert verdict.classification == "delivery"


@PROPERTY
@given(code_facts())
def test_eligible_means_complete_timely_and_the_covered_rule(facts: CodeFacts) -> None:
    verdict = evaluate(V1_1, facts)
    if verdict.verdict == "eligible":
        assert absent_evidence(facts) == ()
        assert not is_late(facts)
        assert not facts.exposed_publicly
        assert facts.account_region == facts.sku_region
        assert verdict.rule == COVERED_RULE[facts.problem]
        assert verdict.missing == ()
        if facts.problem == "wrong_region":
            assert facts.code_region != facts.sku_region


@PROPERTY
@given(code_facts())
def test_needs_evidence_lists_exactly_the_absent_items(facts: CodeFacts) -> None:
    verdict = evaluate(V1_1, facts)
    if verdict.verdict == "needs_evidence":
        assert verdict.rule is None
        assert verdict.missing == absent_evidence(facts)
        assert verdict.missing != ()
    else:
        assert verdict.missing == ()
    decided_earlier = (
        is_late(facts) or facts.problem == "account_restricted" or facts.exposed_publicly
    )
    if not decided_earlier and absent_evidence(facts):
        assert verdict.verdict == "needs_evidence"


@PROPERTY
@given(code_facts())
def test_rules_exist_and_eligible_iff_covered(facts: CodeFacts) -> None:
    verdict = evaluate(V1_1, facts)
    assert verdict.verdict in {"eligible", "not_covered", "needs_evidence"}
    assert verdict.classification == classification_of(facts.problem)
    assert (verdict.rule is None) == (verdict.verdict == "needs_evidence")
    if verdict.rule is not None:
        assert verdict.rule in V1_1.rules
        assert V1_1.rule(verdict.rule).covered == (verdict.verdict == "eligible")


@PROPERTY
@given(code_facts())
def test_evaluate_is_deterministic(facts: CodeFacts) -> None:
    assert evaluate(V1_1, facts) == evaluate(V1_1, replace(facts))


# --- Versioning -------------------------------------------------------------------------------


def test_policies_map_versions() -> None:
    assert POLICIES["1.1"] is V1_1
    assert V1_1.version == "1.1"
    assert CURRENT is V1_1


def test_a_new_version_changes_verdicts_without_touching_evaluate() -> None:
    v1_2: Policy = replace(
        V1_1,
        version="1.2",
        effective_from=datetime(2026, 7, 1, tzinfo=UTC),
        window=timedelta(days=14),
        evidence={**V1_1.evidence, CODE: ("error_evidence", "account_region")},
    )
    ten_days_later = replace(BASE, submitted_at=DELIVERED + timedelta(days=10))
    assert evaluate(V1_1, ten_days_later).rule == "not_covered.window"
    assert evaluate(v1_2, ten_days_later) == Verdict(ELIGIBLE, CODE, rule="covered.invalid")

    no_attempt_time = replace(BASE, attempted_at=None)
    assert evaluate(V1_1, no_attempt_time) == Verdict(
        NEEDS_EVIDENCE, CODE, missing=("attempted_at",)
    )
    assert evaluate(v1_2, no_attempt_time) == Verdict(ELIGIBLE, CODE, rule="covered.invalid")

    fifteen_days_later = replace(BASE, submitted_at=DELIVERED + timedelta(days=15))
    assert evaluate(v1_2, fifteen_days_later).rule == "not_covered.window"
    # v1.1 itself is unchanged by deriving v1.2 from it.
    assert V1_1.window == timedelta(hours=168)
    assert POLICIES == {"1.1": V1_1}
