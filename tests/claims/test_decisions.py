"""Per-code decisions, through POST /api/v1/admin/claims/{id}/decisions on both databases:
approving some codes of a claim and rejecting others, in one step or several; what the partner
sees of each code (its API view and the claim.updated events); the rules each decision must
keep (a reason, a not-covered rule, an override for codes not eligible, codes named once and
not decided twice); escalated codes; and two decisions racing on one claim."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from codeshelf.claims import service as claims
from codeshelf.claims.models import ClaimCode
from codeshelf.invariants import check_all
from codeshelf.kit.db import Database
from codeshelf.kit.vault import Vault
from tests.fixtures import factories
from tests.fixtures.claims import (
    OperatorKeyHandle,
    audit_events,
    claim_body,
    claimed_code_states,
    file_claim,
    issue_operator_key,
    load_claim,
    place,
    snapshot,
)
from tests.fixtures.http import assert_problem, balance, second_while_first_is_open
from tests.fixtures.servers import LiveServer

ADMIN = "/api/v1/admin/claims"
EXPOSED = "not_covered.public_exposure"


def decisions(
    client: httpx.Client, operator: OperatorKeyHandle, claim_id: str, body: dict[str, Any]
) -> httpx.Response:
    return client.post(f"{ADMIN}/{claim_id}/decisions", json=body, headers=operator.headers)


def decided(
    client: httpx.Client, operator: OperatorKeyHandle, claim_id: str, body: dict[str, Any]
) -> dict[str, Any]:
    response = decisions(client, operator, claim_id, body)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def claim_of(
    client: httpx.Client, shop: factories.Shop, count: int, remedy: str = "refund", **extra: Any
) -> tuple[str, list[str]]:
    """An eligible claim of partner a on ``count`` freshly bought codes: (claim id, codes)."""
    order_id, codes = place(client, shop.a.headers, quantity=count)
    body = claim_body(order_id, *codes, remedy=remedy, **extra)
    return file_claim(client, shop.a.headers, body), codes


def partner_view(client: httpx.Client, shop: factories.Shop, claim_id: str) -> dict[str, Any]:
    response = client.get(f"/api/v1/claims/{claim_id}", headers=shop.a.headers)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def claim_updates(client: httpx.Client, headers: dict[str, str]) -> list[dict[str, Any]]:
    response = client.get("/api/v1/events", params={"type": "claim.updated"}, headers=headers)
    assert response.status_code == 200, response.text
    return [event["payload"] for event in response.json()["data"]]


def masked(code: str) -> str:
    return f"****-****-{code[-4:]}"


def open_flags(db: Database, claim_id: str) -> list[bool]:
    return [claimed.open for claimed in load_claim(db, claim_id).codes]


# ---------------------------------------------------------------------------------------------
# One step: some codes approved, others rejected


def test_approve_some_codes_and_reject_the_others(
    client: httpx.Client, db: Database, shop: factories.Shop, database_url: str
) -> None:
    alice = issue_operator_key(db)
    claim_id, codes = claim_of(client, shop, 3)
    assert balance(client, shop.a.headers) == "860.50"

    # Codes named by position or by their masked code as the claim view shows it.
    body = {
        "approve": [1, masked(codes[2])],
        "reject": [codes[1][-4:]],
        "reason": "PSN: 2 is fine",
        "rule": EXPOSED,
    }
    done = decided(client, alice, claim_id, body)
    assert done["status"] == "resolved"
    assert [c["position"] for c in done["codes"]] == [1, 2, 3]
    assert [c["decision"] for c in done["codes"]] == ["approved", "rejected", "approved"]
    assert [c["decision_rule"] for c in done["codes"]] == [None, EXPOSED, None]
    assert done["codes"][1]["decision_rule_text"].startswith("The code was exposed publicly")
    assert all(c["decided_at"] for c in done["codes"])
    # Only the approved codes were refunded, each what was paid for it.
    assert [c["remedy"] for c in done["codes"]][1] is None
    for index in (0, 2):
        assert done["codes"][index]["remedy"]["refunded"] == {"amount": "46.50", "currency": "USD"}
    assert balance(client, shop.a.headers) == "953.50"
    assert claimed_code_states(db, claim_id) == ["voided", "delivered", "voided"]
    assert open_flags(db, claim_id) == [False, False, False]
    assert "approved" in done["customer_message"] and "1 of the 3 codes" in done["customer_message"]

    # One audit event for the decision, naming the operator and every code's outcome.
    [event] = audit_events(db, claim_id, "claim.decide")
    assert event.actor == "operator:alice" and event.api_key_public_id == alice.key_id
    assert event.details is not None
    assert event.details["reason"] == "PSN: 2 is fine"
    assert event.details["codes"] == [
        {"position": 1, "code": masked(codes[0]), "decision": "approved", "rule": None},
        {"position": 2, "code": masked(codes[1]), "decision": "rejected", "rule": EXPOSED},
        {"position": 3, "code": masked(codes[2]), "decision": "approved", "rule": None},
    ]
    assert event.details["remedy"] == "refund" and event.details["complete"] is True
    assert audit_events(db, claim_id, "claim.approve") == []
    assert factories.run_cli(database_url, "ledger", "check").exit_code == 0

    # The partner sees each code's decision, in its API view and in the claim.updated event.
    seen = partner_view(client, shop, claim_id)
    decided_codes = [(c["position"], c["decision"]) for c in seen["codes"]]
    assert decided_codes == [(1, "approved"), (2, "rejected"), (3, "approved")]
    assert seen["codes"][1]["decision_rule"] == EXPOSED
    last = claim_updates(client, shop.a.headers)[-1]
    assert last["claim_id"] == claim_id and last["status"] == "resolved"
    assert last["codes"] == [
        {"position": 1, "code": masked(codes[0]), "decision": "approved", "decision_rule": None},
        {"position": 2, "code": masked(codes[1]), "decision": "rejected", "decision_rule": EXPOSED},
        {"position": 3, "code": masked(codes[2]), "decision": "approved", "decision_rule": None},
    ]


def test_rejecting_every_code_rejects_the_claim_under_each_codes_own_rule(
    client: httpx.Client, db: Database, shop: factories.Shop
) -> None:
    alice = issue_operator_key(db)
    order_id, codes = place(client, shop.a.headers, quantity=2)
    body = claim_body(order_id, codes[0], {"code": codes[1], "problem": "account_restricted"})
    body["redemption"]["account_region"] = "TR"  # code 1: not covered, account region
    claim_id = file_claim(client, shop.a.headers, body)
    rules_of = [c.rule for c in load_claim(db, claim_id).codes]
    assert rules_of == ["not_covered.account_region", "not_covered.account_restriction"]

    done = decided(client, alice, claim_id, {"reject": [1, 2], "reason": "not ours"})
    assert done["status"] == "rejected"
    assert [c["decision_rule"] for c in done["codes"]] == rules_of
    assert done["decision_rule"] == "not_covered.account_region"
    assert "another region" in done["customer_message"]
    assert "restriction on the account" in done["customer_message"]
    assert claimed_code_states(db, claim_id) == ["delivered", "delivered"]
    [event] = audit_events(db, claim_id, "claim.reject")
    assert event.details is not None and event.details["rule"] is None  # two rules, none named
    assert balance(client, shop.a.headers) == "907.00"


# ---------------------------------------------------------------------------------------------
# Several steps


def test_codes_decided_in_several_steps(
    client: httpx.Client, db: Database, vault: Vault, shop: factories.Shop, database_url: str
) -> None:
    alice = issue_operator_key(db)
    claim_id, codes = claim_of(client, shop, 3, remedy="replacement")

    # Step 1: code 2 rejected. The claim stays open (triaged on the way), the rejected code is
    # the partner's again and no longer held by the claim.
    first = decided(client, alice, claim_id, {"reject": [2], "reason": "exposed", "rule": EXPOSED})
    assert first["status"] == "triaged"
    assert [c["decision"] for c in first["codes"]] == [None, "rejected", None]
    assert open_flags(db, claim_id) == [True, False, True]
    assert "checking" in first["customer_message"]
    assert claim_updates(client, shop.a.headers)[-1]["codes"][1]["decision"] == "rejected"
    # Undecided codes keep their clock; the claim stays in the queue.
    queued = client.get(ADMIN, headers=alice.headers).json()["data"]
    assert [c["id"] for c in queued] == [claim_id]

    # A partly decided claim cannot be withdrawn, nor take evidence for a decided code.
    cancel = client.post(f"/api/v1/claims/{claim_id}/cancel", headers=shop.a.headers)
    assert_problem(cancel, 409, "claim-state-conflict")
    evidence = client.post(
        f"/api/v1/claims/{claim_id}/evidence",
        json={"codes": [{"code": codes[1], "code_region": "US"}]},
        headers=shop.a.headers,
    )
    assert_problem(evidence, 409, "claim-state-conflict")
    # Deciding a code twice is refused, and changes nothing.
    before = snapshot(db, claim_id)
    again = decisions(client, alice, claim_id, {"approve": [2], "reason": "changed my mind"})
    problem = assert_problem(again, 409, "claim-state-conflict")
    assert "already rejected" in problem["detail"]
    assert snapshot(db, claim_id) == before

    # Step 2: code 1 approved: replaced at once, while code 3 waits for its decision.
    second = decided(client, alice, claim_id, {"approve": [1], "reason": "PSN: invalid"})
    assert second["status"] == "triaged"
    assert second["codes"][0]["remedy"]["state"] == "done"
    assert len(second["replacement_order_ids"]) == 1
    assert claimed_code_states(db, claim_id) == ["voided", "delivered", "delivered"]

    # Step 3: the whole-claim approve decides what is left (only code 3).
    third = client.post(
        f"{ADMIN}/{claim_id}/approve", json={"reason": "PSN: invalid too"}, headers=alice.headers
    )
    assert third.status_code == 200, third.text
    done = third.json()
    assert done["status"] == "resolved"
    assert [c["decision"] for c in done["codes"]] == ["approved", "rejected", "approved"]
    assert len(done["replacement_order_ids"]) == 2
    assert claimed_code_states(db, claim_id) == ["voided", "delivered", "voided"]
    assert [len(audit_events(db, claim_id, f"claim.{a}")) for a in ("reject", "approve")] == [1, 2]
    assert balance(client, shop.a.headers) == "860.50"  # replaced, not refunded
    assert factories.run_cli(database_url, "ledger", "check").exit_code == 0

    # The rejected code may be claimed again: a new claim, which names the earlier one.
    order_id = done["order_id"]
    again_id = file_claim(client, shop.a.headers, claim_body(order_id, codes[1]))
    [history] = client.get(f"{ADMIN}/{again_id}", headers=alice.headers).json()["history"]
    assert history["other_claims_on_code"] == [claim_id]


def test_last_code_rejected_after_the_others_were_remedied_resolves_the_claim(
    client: httpx.Client, db: Database, shop: factories.Shop
) -> None:
    alice = issue_operator_key(db)
    claim_id, _ = claim_of(client, shop, 2)
    assert decided(client, alice, claim_id, {"approve": [2], "reason": "ok"})["status"] == "triaged"
    done = decided(client, alice, claim_id, {"reject": [1], "reason": "r", "rule": EXPOSED})
    assert done["status"] == "resolved"
    assert load_claim(db, claim_id).resolved_at is not None
    assert balance(client, shop.a.headers) == "953.50"


def test_a_partly_approved_replacement_waits_for_stock_and_is_served_by_fulfil(
    client: httpx.Client, db: Database, vault: Vault
) -> None:
    shop = factories.make_shop(db, vault, stock_count=2)
    alice = issue_operator_key(db)
    claim_id, _ = claim_of(client, shop, 2, remedy="replacement")
    waiting = decided(client, alice, claim_id, {"approve": [1], "reason": "invalid"})
    assert waiting["status"] == "triaged"
    assert waiting["codes"][0]["remedy"]["state"] == "waiting"

    factories.load_codes(db, vault, shop.sku, 1)
    with db.session() as session:
        assert claims.fulfil_waiting(session, claims.Actor("operator:alice")) == []
    served = load_claim(db, claim_id)
    assert served.status == "triaged"  # code 2 is still undecided
    assert served.codes[0].remedy is not None and served.codes[0].remedy.state == "done"
    assert claim_updates(client, shop.a.headers)[-1]["codes"][0]["decision"] == "approved"


# ---------------------------------------------------------------------------------------------
# The rules every decision keeps


def test_approving_a_code_not_eligible_needs_an_override(
    client: httpx.Client, db: Database, shop: factories.Shop
) -> None:
    alice = issue_operator_key(db)
    order_id, codes = place(client, shop.a.headers, quantity=2)
    body = claim_body(
        order_id, codes[0], {"code": codes[1], "problem": "account_restricted"}, remedy="refund"
    )
    claim_id = file_claim(client, shop.a.headers, body)
    before = snapshot(db, claim_id)

    refused = decisions(client, alice, claim_id, {"approve": [1, 2], "reason": "fine"})
    problem = assert_problem(refused, 409, "claim-not-eligible")
    assert problem["codes"] == [masked(codes[1])]
    assert snapshot(db, claim_id) == before
    # The eligible code alone needs none; the other then needs the override.
    decided(client, alice, claim_id, {"approve": [1], "reason": "fine"})
    assert_problem(
        decisions(client, alice, claim_id, {"approve": [2], "reason": "goodwill"}),
        409,
        "claim-not-eligible",
    )
    done = decided(
        client, alice, claim_id, {"approve": [2], "reason": "Sony lifted it", "override": True}
    )
    assert done["status"] == "resolved"
    overridden = audit_events(db, claim_id, "claim.approve")[-1]
    assert overridden.details is not None
    assert overridden.details["override"] == [masked(codes[1])]
    assert balance(client, shop.a.headers) == "1000.00"


def test_refused_decisions_change_nothing(
    client: httpx.Client, db: Database, shop: factories.Shop
) -> None:
    alice = issue_operator_key(db)
    claim_id, _ = claim_of(client, shop, 2)
    before = snapshot(db, claim_id)
    for body in (
        {"approve": [1]},  # no reason
        {"approve": [1], "reason": "  "},
        {"reason": "nothing named"},
        {"approve": [], "reject": [], "reason": "nothing named"},
        {"approve": [3], "reason": "no such code"},
        {"approve": [0], "reason": "positions start at 1"},
        {"approve": [1, 1], "reason": "twice"},
        {"approve": [1], "reject": [1], "reason": "both ways", "rule": EXPOSED},
        {"approve": ["ZZZZ"], "reason": "not one of its codes"},
        {"approve": [True], "reason": "not a position"},
        {"reject": [1], "reason": "eligible: a rule must be named"},
        {"reject": [1], "reason": "covered rule", "rule": "covered.invalid"},
        {"reject": [1], "reason": "made up", "rule": "not_covered.bad_vibes"},
        {"approve": [1], "reason": "a rule without a rejection", "rule": EXPOSED},
        {"approve": [1], "reason": "r", "extra": "field"},
    ):
        response = decisions(client, alice, claim_id, body)
        assert_problem(response, 422, "validation-error")
    assert snapshot(db, claim_id) == before
    assert load_claim(db, claim_id).status == "submitted"

    missing = decisions(client, alice, f"clm_{'0' * 20}", {"approve": [1], "reason": "r"})
    assert_problem(missing, 404, "claim-not-found")
    # A closed claim takes no decision.
    decided(client, alice, claim_id, {"reject": [1, 2], "reason": "r", "rule": EXPOSED})
    closed = decisions(client, alice, claim_id, {"approve": [1], "reason": "r"})
    problem = assert_problem(closed, 409, "claim-state-conflict")
    assert "cannot be approved" in problem["detail"]


def test_escalated_codes_come_back_or_are_voided_code_by_code(
    client: httpx.Client, db: Database, shop: factories.Shop
) -> None:
    alice = issue_operator_key(db)
    claim_id, _ = claim_of(client, shop, 3)
    decided(client, alice, claim_id, {"reject": [3], "reason": "r", "rule": EXPOSED})
    escalate = client.post(
        f"{ADMIN}/{claim_id}/escalate", json={"reason": "ask upstream"}, headers=alice.headers
    )
    assert escalate.status_code == 200, escalate.text
    # Only the undecided codes are quarantined; the rejected one stays the partner's.
    assert claimed_code_states(db, claim_id) == ["quarantined", "quarantined", "delivered"]

    step = decided(client, alice, claim_id, {"reject": [2], "reason": "r", "rule": EXPOSED})
    assert step["status"] == "escalated_upstream"
    assert claimed_code_states(db, claim_id) == ["quarantined", "delivered", "delivered"]
    done = decided(client, alice, claim_id, {"approve": [1], "reason": "supplier agrees"})
    assert done["status"] == "resolved"
    assert claimed_code_states(db, claim_id) == ["voided", "delivered", "delivered"]
    assert balance(client, shop.a.headers) == "907.00"  # three bought, one refunded


def test_a_partner_cannot_reach_another_partners_claim_or_decide_one(
    client: httpx.Client, db: Database, shop: factories.Shop
) -> None:
    alice = issue_operator_key(db)
    claim_id, _ = claim_of(client, shop, 2)
    decided(client, alice, claim_id, {"approve": [1], "reason": "ok"})
    for method, path, body in (
        ("GET", f"/api/v1/claims/{claim_id}", None),
        ("POST", f"/api/v1/claims/{claim_id}/cancel", None),
        ("POST", f"/api/v1/claims/{claim_id}/remedy", {"remedy": "refund"}),
        ("POST", f"/api/v1/claims/{claim_id}/evidence", {"note": "mine now"}),
    ):
        response = client.request(method, path, json=body, headers=shop.b.headers)
        assert_problem(response, 404, "claim-not-found")
    listed = client.get("/api/v1/claims", headers=shop.b.headers).json()["data"]
    assert claim_id not in [c["id"] for c in listed]
    assert claim_updates(client, shop.b.headers) == []
    # Neither partner reaches the operator's decisions.
    for headers in (shop.a.headers, shop.b.headers):
        response = client.post(
            f"{ADMIN}/{claim_id}/decisions", json={"approve": [2], "reason": "x"}, headers=headers
        )
        assert_problem(response, 404, "not-found")
    assert [c.decision for c in load_claim(db, claim_id).codes] == ["approved", None]


# ---------------------------------------------------------------------------------------------
# Two decisions racing on one claim


def _codes_decided(db: Database, claim_id: str) -> list[str | None]:
    with db.read_session() as session:
        claim = claims.get_claim(session, claim_id)
        return list(
            session.scalars(
                select(ClaimCode.decision)
                .where(ClaimCode.claim_id == claim.id)
                .order_by(ClaimCode.id)
            )
        )


@pytest.mark.parametrize("first_acts", ["approve", "reject"])
def test_two_decisions_on_the_same_codes_one_wins(
    client: httpx.Client, live_server: LiveServer, db: Database, shop: factories.Shop,
    first_acts: str,
) -> None:  # fmt: skip
    # The first decision is held uncommitted while the second arrives and waits for the
    # claim's lock; it must then see the codes decided, and change nothing.
    alice = issue_operator_key(db)
    claim_id, _ = claim_of(client, shop, 2)
    operator = claims.Actor("operator:bob")

    def first(session: Session) -> None:
        if first_acts == "approve":
            claims.decide(session, claim_id, operator, "ok", approve=[1, 2])
        else:
            claims.decide(session, claim_id, operator, "no", reject=[1, 2], rule=EXPOSED)

    other: dict[str, Any] = (
        {"reject": [2], "reason": "no", "rule": EXPOSED}
        if first_acts == "approve"
        else {"approve": [2], "reason": "ok"}
    )
    second = second_while_first_is_open(
        db,
        first,
        lambda: httpx.post(
            f"{live_server.url}{ADMIN}/{claim_id}/decisions",
            json=other,
            headers=alice.headers,
            timeout=60,
        ),
    )
    assert_problem(second, 409, "claim-state-conflict")
    expected = "approved" if first_acts == "approve" else "rejected"
    assert _codes_decided(db, claim_id) == [expected, expected]
    status = load_claim(db, claim_id).status
    assert status == ("resolved" if first_acts == "approve" else "rejected")
    assert balance(client, shop.a.headers) == ("1000.00" if first_acts == "approve" else "907.00")
    with db.read_session() as session:
        assert check_all(session) == []


def test_two_decisions_on_different_codes_both_count(
    client: httpx.Client, live_server: LiveServer, db: Database, shop: factories.Shop
) -> None:
    alice = issue_operator_key(db)
    claim_id, _ = claim_of(client, shop, 2)

    def first(session: Session) -> None:
        claims.decide(session, claim_id, claims.Actor("operator:bob"), "ok", approve=[1])

    second = second_while_first_is_open(
        db,
        first,
        lambda: httpx.post(
            f"{live_server.url}{ADMIN}/{claim_id}/decisions",
            json={"reject": [2], "reason": "no", "rule": EXPOSED},
            headers=alice.headers,
            timeout=60,
        ),
    )
    assert second.status_code == 200, second.text
    # The second saw the first's decision: the claim is complete, approved and resolved.
    assert second.json()["status"] == "resolved"
    assert _codes_decided(db, claim_id) == ["approved", "rejected"]
    assert balance(client, shop.a.headers) == "953.50"
    actions = [e.action for e in audit_events(db, claim_id) if e.action != "claim.file"]
    assert actions == ["claim.triage", "claim.approve", "claim.reject", "claim.resolve"]
