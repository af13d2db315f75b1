"""The operator API under /api/v1/admin/claims, over HTTP on both databases: who may reach it
(operator keys only; everyone else sees 404), the triage queue, a claim's code history, every
decision with its audit record, refused transitions, and replacements waiting for stock."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from codeshelf.claims.models import Claim
from codeshelf.claims.policy import V1_1
from codeshelf.kit.db import Database
from codeshelf.kit.vault import Vault
from codeshelf.stock.models import Batch, Code
from tests.fixtures import factories
from tests.fixtures.claims import (
    OperatorKeyHandle,
    audit_events,
    backdate_delivery,
    claim_body,
    claimed_code_states,
    cli_time,
    file_claim,
    issue_operator_key,
    load_claim,
    place,
    reveal,
    set_claim,
    snapshot,
)
from tests.fixtures.http import assert_problem, balance

ADMIN = "/api/v1/admin/claims"


def decide(
    client: httpx.Client,
    operator: OperatorKeyHandle,
    claim_id: str,
    action: str,
    body: dict[str, Any] | None = None,
) -> httpx.Response:
    return client.post(f"{ADMIN}/{claim_id}/{action}", json=body, headers=operator.headers)


def decided(
    client: httpx.Client,
    operator: OperatorKeyHandle,
    claim_id: str,
    action: str,
    body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    response = decide(client, operator, claim_id, action, body)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def show(client: httpx.Client, operator: OperatorKeyHandle, claim_id: str) -> dict[str, Any]:
    response = client.get(f"{ADMIN}/{claim_id}", headers=operator.headers)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def queue_ids(client: httpx.Client, operator: OperatorKeyHandle, **params: str | bool) -> list[str]:
    response = client.get(ADMIN, params=params, headers=operator.headers)
    assert response.status_code == 200, response.text
    return [claim["id"] for claim in response.json()["data"]]


def assert_audited(
    db: Database,
    operator: OperatorKeyHandle,
    claim_id: str,
    action: str,
    reason: str | None,
) -> dict[str, Any]:
    """Exactly one audit row for the decision, naming the operator, its key and the reason."""
    events = audit_events(db, claim_id, f"claim.{action}")
    assert len(events) == 1, [(e.action, e.actor) for e in events]
    event = events[0]
    assert event.actor == f"operator:{operator.name}"
    assert event.api_key_public_id == operator.key_id
    assert event.subject == claim_id
    assert event.details is not None
    assert event.details["reason"] == reason
    return event.details


def eligible_claim(
    client: httpx.Client, shop: factories.Shop, *, remedy: str = "refund", **extra: Any
) -> tuple[str, str]:
    """A claim on one freshly bought code of partner a: (claim id, code)."""
    order_id, [code] = place(client, shop.a.headers)
    return file_claim(
        client, shop.a.headers, claim_body(order_id, code, remedy=remedy, **extra)
    ), code


# ---------------------------------------------------------------------------------------------
# Who may reach the admin API


def test_only_operator_keys_reach_the_admin_api(
    client: httpx.Client, db: Database, shop: factories.Shop, database_url: str
) -> None:
    alice = issue_operator_key(db, "alice")
    claim_id, _ = eligible_claim(client, shop)
    before = snapshot(db, claim_id)

    def routes(headers: dict[str, str]) -> list[httpx.Response]:
        return [
            client.get(ADMIN, headers=headers),
            client.get(f"{ADMIN}/{claim_id}", headers=headers),
            client.post(f"{ADMIN}/{claim_id}/approve", json={"reason": "x"}, headers=headers),
            # A body the route would refuse as invalid: the 404 comes first, nothing leaks.
            client.post(f"{ADMIN}/{claim_id}/reject", json={"bogus": 1}, headers=headers),
            client.get("/api/v1/admin/openapi.json", headers=headers),
        ]

    # Revoked through the CLI: usable just before, refused just after.
    revoked = issue_operator_key(db, "bob")
    assert client.get(ADMIN, headers=revoked.headers).status_code == 200
    result = factories.run_cli(database_url, "operator", "key", "revoke", revoked.key_id)
    assert result.exit_code == 0, result.stderr

    outsiders = {
        "partner key": shop.a.headers,
        "no key": {},
        "basic scheme": {"Authorization": f"Basic {alice.secret}"},
        "bearer without a token": {"Authorization": "Bearer"},
        "no scheme": {"Authorization": alice.secret},
        "oversized token": {"Authorization": "Bearer cs_op_" + "x" * 300},
        "revoked operator key": revoked.headers,
        "made-up operator key": {"Authorization": "Bearer cs_op_" + "A" * 43},
        "altered partner key": {"Authorization": f"Bearer {shop.a.key}x"},
    }
    for label, headers in outsiders.items():
        for response in routes(headers):
            body = assert_problem(response, 404, "not-found")
            assert "admin" in body["detail"], (label, body)
            assert "www-authenticate" not in response.headers, label
    assert snapshot(db, claim_id) == before

    # An unknown admin path looks the same to an outsider as a real one.
    real = client.get(ADMIN, headers=shop.a.headers).json()
    made_up = client.get("/api/v1/admin/nothing-here", headers=shop.a.headers).json()
    assert real.keys() == made_up.keys() and real["type"] == made_up["type"]

    # The operator key reaches each of them.
    listed = client.get(ADMIN, headers=alice.headers)
    assert listed.status_code == 200 and claim_id in [c["id"] for c in listed.json()["data"]]
    assert show(client, alice, claim_id)["id"] == claim_id
    assert client.get("/api/v1/admin/openapi.json", headers=alice.headers).status_code == 200
    assert decided(client, alice, claim_id, "approve", {"reason": "ok"})["status"] == "resolved"


def test_the_partner_openapi_leaves_the_admin_api_out(
    client: httpx.Client, db: Database, shop: factories.Shop
) -> None:
    alice = issue_operator_key(db)
    partner_doc = client.get("/api/v1/openapi.json").json()
    assert partner_doc["paths"], partner_doc
    assert "/api/v1/claims" in partner_doc["paths"]
    assert not [path for path in partner_doc["paths"] if "/admin" in path]
    schemas = partner_doc.get("components", {}).get("schemas", {})
    assert not [name for name in schemas if name.startswith("Admin")]
    assert "HistoryOut" not in schemas and "Decision" not in schemas
    assert "admin" not in json.dumps(partner_doc).lower()

    operator_doc = client.get("/api/v1/admin/openapi.json", headers=alice.headers).json()
    paths = operator_doc["paths"]
    assert set(paths) >= {
        ADMIN,
        f"{ADMIN}/{{claim_id}}",
        f"{ADMIN}/{{claim_id}}/approve",
        f"{ADMIN}/{{claim_id}}/reject",
        f"{ADMIN}/{{claim_id}}/request-info",
        f"{ADMIN}/{{claim_id}}/escalate",
        f"{ADMIN}/{{claim_id}}/resolve",
        f"{ADMIN}/{{claim_id}}/triage",
    }
    assert all(path.startswith("/api/v1/admin") for path in paths)
    assert {"AdminClaimOut", "AdminClaimPage", "Decision"} <= set(
        operator_doc["components"]["schemas"]
    )


# ---------------------------------------------------------------------------------------------
# The queue


def _file_by_cli(database_url: str, db: Database, partner_id: str, order_id: str, code: str) -> str:
    backdate_delivery(db, order_id, timedelta(minutes=10))
    result = factories.run_cli(
        database_url,
        "claims",
        "file",
        "--partner",
        partner_id,
        "--order",
        order_id,
        "--code",
        code,
        "--problem",
        "invalid",
        "--error-code",
        "WS-37432-9",
        "--account-region",
        "US",
        "--attempted-at",
        cli_time(datetime.now(UTC) - timedelta(minutes=1)),
        "--operator",
        "alice",
        "--json",
    )
    assert result.exit_code == 0, (result.stdout, result.stderr)
    filed: dict[str, Any] = json.loads(result.stdout)
    assert filed["channel"] == "operator" and filed["priority"] == 2
    claim_id: str = filed["id"]
    return claim_id


def test_queue_puts_overdue_first_then_api_claims_and_waiting_claims_last(
    client: httpx.Client, db: Database, shop: factories.Shop, database_url: str
) -> None:
    alice = issue_operator_key(db)
    order_b, [code_b] = place(client, shop.b.headers)
    by_operator = _file_by_cli(database_url, db, shop.b.id, order_b, code_b)
    by_api, _ = eligible_claim(client, shop)
    waiting_on_partner, _ = eligible_claim(client, shop)
    decided(client, alice, waiting_on_partner, "request-info", {"reason": "send a screenshot"})
    late, _ = eligible_claim(client, shop)
    closed, _ = eligible_claim(client, shop)
    decided(client, alice, closed, "approve", {"reason": "ok"})

    assert load_claim(db, by_api).priority == 1
    assert load_claim(db, by_operator).priority == 2
    assert load_claim(db, waiting_on_partner).due_at is None

    # The same deadline: the API claim is triaged first (policy section 5).
    deadline = datetime.now(UTC) + timedelta(hours=12)
    set_claim(db, by_api, due_at=deadline)
    set_claim(db, by_operator, due_at=deadline)
    set_claim(db, late, due_at=datetime.now(UTC) - timedelta(hours=1))
    assert queue_ids(client, alice) == [late, by_api, by_operator, waiting_on_partner]

    # The operator claim's deadline comes first: still after the API claim.
    set_claim(db, by_operator, due_at=deadline - timedelta(hours=6))
    assert queue_ids(client, alice) == [late, by_api, by_operator, waiting_on_partner]

    # Two API claims: the earlier deadline first.
    other_api, _ = eligible_claim(client, shop)
    set_claim(db, other_api, due_at=deadline - timedelta(hours=1))
    assert queue_ids(client, alice) == [late, other_api, by_api, by_operator, waiting_on_partner]

    # Filters.
    assert queue_ids(client, alice, overdue=True) == [late]
    assert queue_ids(client, alice, status="needs_info") == [waiting_on_partner]
    assert queue_ids(client, alice, status="resolved") == [closed]
    assert closed not in queue_ids(client, alice)
    bad = client.get(ADMIN, params={"status": "lost"}, headers=alice.headers)
    assert_problem(bad, 422, "validation-error")

    page = client.get(ADMIN, params={"overdue": "true"}, headers=alice.headers).json()["data"]
    assert page[0]["sla"]["overdue"] is True


def test_overdue_claims_come_by_deadline_whatever_their_channel(
    client: httpx.Client, db: Database, shop: factories.Shop, database_url: str
) -> None:
    """The queue's contract (service.queue): "overdue ones by deadline; then API claims before
    others". The claim overdue the longest is the most urgent, API or not."""
    alice = issue_operator_key(db)
    order_b, [code_b] = place(client, shop.b.headers)
    by_operator = _file_by_cli(database_url, db, shop.b.id, order_b, code_b)
    by_api, _ = eligible_claim(client, shop)
    now = datetime.now(UTC)
    set_claim(db, by_operator, due_at=now - timedelta(hours=10))
    set_claim(db, by_api, due_at=now - timedelta(minutes=5))
    assert queue_ids(client, alice, overdue=True) == [by_operator, by_api]
    assert queue_ids(client, alice) == [by_operator, by_api]


# ---------------------------------------------------------------------------------------------
# One claim, with its codes' history


def test_show_has_each_codes_history(
    client: httpx.Client, db: Database, shop: factories.Shop
) -> None:
    alice = issue_operator_key(db)
    order_id, codes = place(client, shop.a.headers, quantity=2)  # one retrieval
    reveal(client, shop.a.headers, order_id)
    reveal(client, shop.a.headers, order_id)  # three in all
    claim_id = file_claim(
        client, shop.a.headers, claim_body(order_id, codes[0], description="from a chat")
    )
    sibling = file_claim(client, shop.a.headers, claim_body(order_id, codes[1]))
    order_b, [code_b] = place(client, shop.b.headers)
    other_partner = file_claim(client, shop.b.headers, claim_body(order_b, code_b))

    with db.read_session() as session:
        code_row = session.get_one(Code, load_claim(db, claim_id).codes[0].code_id)
        reference = session.get_one(Batch, code_row.batch_id).reference
    order_doc = client.get(f"/api/v1/orders/{order_id}", headers=shop.a.headers).json()

    seen = show(client, alice, claim_id)
    assert seen["partner_id"] == shop.a.id
    assert seen["order_id"] == order_id
    assert seen["priority"] == 1 and seen["channel"] == "api"
    assert seen["description"] == "from a chat"
    assert seen["codes"][0]["verdict"] == "eligible"
    assert seen["codes"][0]["rule"] == "covered.invalid"
    assert seen["codes"][0]["rule_text"]
    [history] = seen["history"]
    assert history["code"].endswith(codes[0][-4:]) and codes[0][:4] not in history["code"]
    assert history["sku"] == "psn-us-50"
    assert history["batch"] == reference
    assert history["supplier"] == "Test Supply"
    assert history["state"] == "delivered"
    assert history["retrievals"] == 3
    delivered = datetime.fromisoformat(history["delivered_at"])
    assert delivered == datetime.fromisoformat(order_doc["delivered_at"])
    assert sorted(history["other_claims_on_batch"]) == sorted([sibling, other_partner])
    assert claim_id not in history["other_claims_on_batch"]

    missing = client.get(f"{ADMIN}/clm_{'0' * 20}", headers=alice.headers)
    assert_problem(missing, 404, "claim-not-found")


# ---------------------------------------------------------------------------------------------
# Decisions


def test_triage_then_approve_refund(
    client: httpx.Client, db: Database, shop: factories.Shop, database_url: str
) -> None:
    alice = issue_operator_key(db, "alice")
    claim_id, _ = eligible_claim(client, shop, remedy="refund")
    triaged = decided(client, alice, claim_id, "triage")
    assert triaged["status"] == "triaged"
    assert_audited(db, alice, claim_id, "triage", None)
    assert load_claim(db, claim_id).triaged_at is not None

    approved = decided(client, alice, claim_id, "approve", {"reason": "PSN confirms invalid"})
    assert approved["status"] == "resolved"
    assert approved["decision_reason"] == "PSN confirms invalid"
    assert approved["codes"][0]["remedy"]["kind"] == "refund"
    assert approved["codes"][0]["remedy"]["refunded"] == {"amount": "46.50", "currency": "USD"}
    assert claimed_code_states(db, claim_id) == ["voided"]
    details = assert_audited(db, alice, claim_id, "approve", "PSN confirms invalid")
    assert details["partner"] == shop.a.id and details["remedy"] == "refund"
    assert balance(client, shop.a.headers) == "1000.00"
    assert factories.run_cli(database_url, "ledger", "check").exit_code == 0


def test_reject_under_the_verdicts_rule_or_a_named_one(
    client: httpx.Client, db: Database, shop: factories.Shop
) -> None:
    alice = issue_operator_key(db)
    # Redeemed on a Turkish account: not covered (account region), and rejected under it.
    order_id, [code] = place(client, shop.a.headers)
    body = claim_body(order_id, code)
    body["redemption"]["account_region"] = "TR"
    wrong_account = file_claim(client, shop.a.headers, body)
    assert load_claim(db, wrong_account).codes[0].rule == "not_covered.account_region"
    rejected = decided(client, alice, wrong_account, "reject", {"reason": "TR account"})
    assert rejected["status"] == "rejected"
    assert rejected["decision_rule"] == "not_covered.account_region"
    assert "another region" in rejected["customer_message"]
    assert claimed_code_states(db, wrong_account) == ["delivered"]
    details = assert_audited(db, alice, wrong_account, "reject", "TR account")
    assert details["rule"] == "not_covered.account_region"
    # Rejecting triaged it first, on the record too.
    assert_audited(db, alice, wrong_account, "triage", None)

    # An eligible claim rejected under a rule the operator names.
    exposed, _ = eligible_claim(client, shop)
    rejected = decided(
        client,
        alice,
        exposed,
        "reject",
        {"reason": "code visible on a stream", "rule": "not_covered.public_exposure"},
    )
    assert rejected["decision_rule"] == "not_covered.public_exposure"
    assert "shared publicly" in rejected["customer_message"]
    assert claimed_code_states(db, exposed) == ["delivered"]
    partner_view = client.get(f"/api/v1/claims/{exposed}", headers=shop.a.headers).json()
    assert partner_view["status"] == "rejected"
    assert partner_view["decision_rule"] == "not_covered.public_exposure"


def test_reject_needs_a_not_covered_rule_and_a_reason(
    client: httpx.Client, db: Database, shop: factories.Shop
) -> None:
    alice = issue_operator_key(db)
    claim_id, _ = eligible_claim(client, shop)
    before = snapshot(db, claim_id)
    refusals: list[dict[str, Any] | None] = [
        {"reason": "no rule, and the verdict is eligible"},
        {"reason": "a covered rule", "rule": "covered.invalid"},
        {"reason": "made up", "rule": "not_covered.bad_vibes"},
        {"rule": "not_covered.public_exposure"},
        {"reason": "   ", "rule": "not_covered.public_exposure"},
        {"reason": "x" * 2001, "rule": "not_covered.public_exposure"},
        None,
    ]
    for body in refusals:
        assert_problem(decide(client, alice, claim_id, "reject", body), 422, "validation-error")
    assert snapshot(db, claim_id) == before
    assert load_claim(db, claim_id).status == "submitted"


def test_request_info_needs_a_reason_and_waits_on_the_partner(
    client: httpx.Client, db: Database, shop: factories.Shop
) -> None:
    alice = issue_operator_key(db)
    claim_id, _ = eligible_claim(client, shop)
    before = snapshot(db, claim_id)
    for body in ({}, {"reason": ""}, {"reason": " \n "}):
        response = decide(client, alice, claim_id, "request-info", body)
        assert_problem(response, 422, "validation-error")
    assert snapshot(db, claim_id) == before

    asked = decided(client, alice, claim_id, "request-info", {"reason": "the PSN screenshot"})
    assert asked["status"] == "needs_info"
    assert asked["info_request"] == "the PSN screenshot"
    assert asked["sla"]["due_at"] is None and asked["sla"]["overdue"] is False
    assert_audited(db, alice, claim_id, "request_info", "the PSN screenshot")
    partner_view = client.get(f"/api/v1/claims/{claim_id}", headers=shop.a.headers).json()
    assert partner_view["info_request"] == "the PSN screenshot"
    # Asking again while the partner has not answered is refused.
    again = decide(client, alice, claim_id, "request-info", {"reason": "again"})
    assert_problem(again, 409, "claim-state-conflict")


def test_escalate_quarantines_then_approve_voids(
    client: httpx.Client, db: Database, shop: factories.Shop, database_url: str
) -> None:
    alice = issue_operator_key(db)
    claim_id, _ = eligible_claim(client, shop, remedy="replacement", problem="technical_failure")
    for body in ({}, {"reason": ""}):
        response = decide(client, alice, claim_id, "escalate", body)
        assert_problem(response, 422, "validation-error")
    assert claimed_code_states(db, claim_id) == ["delivered"]

    escalated = decided(client, alice, claim_id, "escalate", {"reason": "serial collision?"})
    assert escalated["status"] == "escalated_upstream"
    assert escalated["sla"]["upstream_due_at"] is not None
    assert escalated["sla"]["due_at"] == escalated["sla"]["upstream_due_at"]
    assert "issuer" in escalated["customer_message"]
    assert claimed_code_states(db, claim_id) == ["quarantined"]
    stored = load_claim(db, claim_id)
    assert stored.escalated_at is not None and stored.upstream_due_at is not None
    assert stored.upstream_due_at > stored.escalated_at + timedelta(days=7)
    assert_audited(db, alice, claim_id, "escalate", "serial collision?")
    # The partner can no longer withdraw it.
    cancel = client.post(f"/api/v1/claims/{claim_id}/cancel", headers=shop.a.headers)
    assert_problem(cancel, 409, "claim-state-conflict")

    approved = decided(client, alice, claim_id, "approve", {"reason": "supplier confirmed"})
    assert approved["status"] == "resolved"
    assert claimed_code_states(db, claim_id) == ["voided"]
    [replacement_order] = approved["replacement_order_ids"]
    assert len(reveal(client, shop.a.headers, replacement_order)) == 1
    assert_audited(db, alice, claim_id, "approve", "supplier confirmed")
    assert factories.run_cli(database_url, "ledger", "check").exit_code == 0


def test_escalate_then_reject_returns_the_codes(
    client: httpx.Client, db: Database, shop: factories.Shop, database_url: str
) -> None:
    alice = issue_operator_key(db)
    claim_id, _ = eligible_claim(client, shop)
    decided(client, alice, claim_id, "escalate", {"reason": "check upstream"})
    assert claimed_code_states(db, claim_id) == ["quarantined"]
    rejected = decided(
        client,
        alice,
        claim_id,
        "reject",
        {"reason": "supplier: redeemed by the buyer", "rule": "not_covered.public_exposure"},
    )
    assert rejected["status"] == "rejected"
    assert claimed_code_states(db, claim_id) == ["delivered"]
    assert rejected["sla"]["due_at"] is None
    assert_audited(db, alice, claim_id, "reject", "supplier: redeemed by the buyer")
    assert factories.run_cli(database_url, "ledger", "check").exit_code == 0


def test_illegal_transitions_change_nothing(
    client: httpx.Client, db: Database, shop: factories.Shop
) -> None:
    alice = issue_operator_key(db)

    def refused(claim_id: str, response: httpx.Response, before: tuple[Any, ...]) -> None:
        assert_problem(response, 409, "claim-state-conflict")
        assert snapshot(db, claim_id) == before

    # Approving a rejected claim.
    rejected, _ = eligible_claim(client, shop)
    decided(client, alice, rejected, "reject", {"reason": "r", "rule": "not_covered.window"})
    refused(
        rejected,
        decide(client, alice, rejected, "approve", {"reason": "ok"}),
        snapshot(db, rejected),
    )
    refused(
        rejected,
        decide(client, alice, rejected, "escalate", {"reason": "x"}),
        snapshot(db, rejected),
    )

    # Approving twice (the first approval refunded and resolved it).
    approved, _ = eligible_claim(client, shop, remedy="refund")
    decided(client, alice, approved, "approve", {"reason": "ok"})
    before = snapshot(db, approved)
    refused(approved, decide(client, alice, approved, "approve", {"reason": "ok"}), before)
    refused(
        approved,
        decide(client, alice, approved, "reject", {"reason": "r", "rule": "not_covered.window"}),
        before,
    )
    refused(approved, decide(client, alice, approved, "resolve"), before)
    # The partner cancels after approval.
    cancel = client.post(f"/api/v1/claims/{approved}/cancel", headers=shop.a.headers)
    refused(approved, cancel, before)
    assert balance(client, shop.a.headers) == "953.50"  # two bought, one refunded

    # Triaging a triaged claim; resolving one not approved.
    triaged, _ = eligible_claim(client, shop)
    decided(client, alice, triaged, "triage")
    before = snapshot(db, triaged)
    refused(triaged, decide(client, alice, triaged, "triage"), before)
    refused(triaged, decide(client, alice, triaged, "resolve"), before)
    assert audit_events(db, triaged, "claim.triage")[0].actor == "operator:alice"

    # A cancelled claim takes no decision.
    cancelled, _ = eligible_claim(client, shop)
    assert client.post(f"/api/v1/claims/{cancelled}/cancel", headers=shop.a.headers).is_success
    before = snapshot(db, cancelled)
    for action in ("triage", "approve", "resolve"):
        refused(cancelled, decide(client, alice, cancelled, action, {"reason": "r"}), before)

    # Unknown claims are not found.
    unknown = decide(client, alice, f"clm_{'f' * 20}", "approve", {"reason": "ok"})
    assert_problem(unknown, 404, "claim-not-found")


# ---------------------------------------------------------------------------------------------
# Replacements waiting for stock


def _waiting_replacement(
    client: httpx.Client, db: Database, vault: Vault
) -> tuple[factories.Shop, OperatorKeyHandle, str, str, list[str]]:
    """A shop of exactly two codes, both bought; a replacement claim on one, approved."""
    shop = factories.make_shop(db, vault, stock_count=2)
    alice = issue_operator_key(db)
    order_id, codes = place(client, shop.a.headers, quantity=2)
    claim_id = file_claim(
        client, shop.a.headers, claim_body(order_id, codes[0], remedy="replacement")
    )
    approved = decided(client, alice, claim_id, "approve", {"reason": "invalid"})
    assert approved["status"] == "approved"
    [verdict] = approved["codes"]
    assert verdict["remedy"]["kind"] == "replacement"
    assert verdict["remedy"]["state"] == "waiting"
    assert "replacement" in approved["customer_message"]
    assert "shortly" in approved["customer_message"]
    assert approved["sla"]["due_at"] == approved["sla"]["remedy_due_at"]
    assert claimed_code_states(db, claim_id) == ["voided"]
    assert audit_events(db, claim_id, "claim.resolve") == []
    resolve = decide(client, alice, claim_id, "resolve")
    assert_problem(resolve, 409, "replacement-waiting-for-stock")
    assert load_claim(db, claim_id).status == "approved"
    return shop, alice, claim_id, order_id, codes


def test_waiting_replacement_switched_to_a_refund(
    client: httpx.Client, db: Database, vault: Vault, database_url: str
) -> None:
    shop, alice, claim_id, _, _ = _waiting_replacement(client, db, vault)
    assert balance(client, shop.a.headers) == "907.00"
    # Only a refund may replace a waiting replacement.
    same = client.post(
        f"/api/v1/claims/{claim_id}/remedy", json={"remedy": "replacement"}, headers=shop.a.headers
    )
    assert_problem(same, 409, "claim-state-conflict")

    switched = client.post(
        f"/api/v1/claims/{claim_id}/remedy", json={"remedy": "refund"}, headers=shop.a.headers
    )
    assert switched.status_code == 200, switched.text
    claim = switched.json()
    assert claim["status"] == "resolved"
    assert claim["remedy"] == "refund"
    assert claim["codes"][0]["remedy"]["kind"] == "refund"
    assert claim["codes"][0]["remedy"]["refunded"] == {"amount": "46.50", "currency": "USD"}
    assert claim["replacement_order_ids"] == []
    assert "refunded" in claim["customer_message"]
    assert balance(client, shop.a.headers) == "953.50"
    assert show(client, alice, claim_id)["status"] == "resolved"
    assert factories.run_cli(database_url, "ledger", "check").exit_code == 0

    # Switching again, or resolving, is refused now.
    again = client.post(
        f"/api/v1/claims/{claim_id}/remedy", json={"remedy": "refund"}, headers=shop.a.headers
    )
    assert_problem(again, 409, "claim-state-conflict")
    assert_problem(decide(client, alice, claim_id, "resolve"), 409, "claim-state-conflict")
    assert balance(client, shop.a.headers) == "953.50"


def test_stock_import_resolves_a_waiting_replacement(
    client: httpx.Client, db: Database, vault: Vault, database_url: str, tmp_path: Path
) -> None:
    shop, alice, claim_id, _, codes = _waiting_replacement(client, db, vault)
    fresh = [factories.random_code() for _ in range(3)]
    stock_file = tmp_path / "codes.txt"
    stock_file.write_text("\n".join(fresh) + "\n")
    result = factories.run_cli(
        database_url, "stock", "import", str(stock_file), "--sku", "psn-us-50", "--batch", "B"
    )
    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert claim_id in result.stderr

    claim = show(client, alice, claim_id)
    assert claim["status"] == "resolved"
    assert claim["codes"][0]["remedy"]["state"] == "done"
    [replacement_order] = claim["replacement_order_ids"]
    [new_code] = reveal(client, shop.a.headers, replacement_order)
    assert new_code in fresh and new_code not in codes
    assert "replacement code has been issued" in claim["customer_message"]
    assert balance(client, shop.a.headers) == "907.00"  # a replacement costs nothing
    [resolved] = audit_events(db, claim_id, "claim.resolve")
    assert resolved.actor == "operator:cli"
    assert factories.run_cli(database_url, "ledger", "check").exit_code == 0


def test_resolve_once_stock_is_in(
    client: httpx.Client, db: Database, vault: Vault, database_url: str
) -> None:
    shop, alice, claim_id, _, _ = _waiting_replacement(client, db, vault)
    fresh = factories.load_codes(db, vault, "psn-us-50", 1)  # no automatic fulfilment here
    assert load_claim(db, claim_id).status == "approved"
    resolved = decided(client, alice, claim_id, "resolve")
    assert resolved["status"] == "resolved"
    [replacement_order] = resolved["replacement_order_ids"]
    assert reveal(client, shop.a.headers, replacement_order) == fresh
    assert_audited(db, alice, claim_id, "resolve", None)
    stored = load_claim(db, claim_id)
    assert stored.resolved_at is not None and stored.due_at is None
    with db.read_session() as session:
        assert session.scalar(select(Claim.status).where(Claim.public_id == claim_id)) == (
            "resolved"
        )
    assert factories.run_cli(database_url, "ledger", "check").exit_code == 0


def test_operator_names_fit_the_audit_log(
    client: httpx.Client, db: Database, shop: factories.Shop, database_url: str
) -> None:
    """The audit actor is "operator:<name>" in 64 characters: a name is at most 55, so every
    key that can be created can also decide (PostgreSQL would refuse a longer actor)."""
    name = "Night Shift (EMEA) - Escalations Desk, Customer Support"  # 55 characters
    long_named = issue_operator_key(db, name)
    claim_id, _ = eligible_claim(client, shop)
    approved = decide(client, long_named, claim_id, "approve", {"reason": "verified"})
    assert approved.status_code == 200, approved.text
    assert_audited(db, long_named, claim_id, "approve", "verified")
    refused = factories.run_cli(database_url, "operator", "key", "create", name + "!")
    assert refused.exit_code == 1 and "1 to 55 printable characters" in refused.stderr
    other, _ = eligible_claim(client, shop)
    too_long = factories.run_cli(database_url, "claims", "triage", other, "--operator", "x" * 56)
    assert too_long.exit_code == 1 and "--operator" in too_long.stderr
    assert show(client, long_named, other)["status"] == "submitted"


def test_a_claim_whose_partner_never_answers_can_be_rejected(
    client: httpx.Client, db: Database, shop: factories.Shop
) -> None:
    alice = issue_operator_key(db)
    claim_id, _ = eligible_claim(client, shop)
    decided(client, alice, claim_id, "request-info", {"reason": "the PSN screenshot, please"})
    rejected = decided(
        client,
        alice,
        claim_id,
        "reject",
        {"reason": "no answer in 14 days", "rule": "not_covered.evidence_missing"},
    )
    assert rejected["status"] == "rejected"
    assert rejected["decision_rule"] == "not_covered.evidence_missing"
    partner_view = client.get(f"/api/v1/claims/{claim_id}", headers=shop.a.headers).json()
    assert partner_view["customer_message"] == (
        "We could not approve your report. "
        + V1_1.rule("not_covered.evidence_missing").customer_message
    )


def test_approval_needs_a_reason_and_an_override_for_codes_not_eligible(
    client: httpx.Client, db: Database, shop: factories.Shop
) -> None:
    """Nothing is paid for a code the policy did not cover by a slip of the hand."""
    alice = issue_operator_key(db)
    order_id, codes = place(client, shop.a.headers, 2)
    body = claim_body(
        order_id, codes[0], {"code": codes[1], "problem": "account_restricted"}, remedy="refund"
    )
    claim_id = file_claim(client, shop.a.headers, body)
    before = snapshot(db, claim_id)
    assert_problem(decide(client, alice, claim_id, "approve", {}), 422, "validation-error")
    refused = decide(client, alice, claim_id, "approve", {"reason": "looks fine"})
    problem = assert_problem(refused, 409, "claim-not-eligible")
    assert problem["codes"] == [f"****-****-{codes[1][-4:]}"]
    assert snapshot(db, claim_id) == before
    assert balance(client, shop.a.headers) == "907.00"

    approved = decided(
        client, alice, claim_id, "approve", {"reason": "Sony lifted the ban", "override": True}
    )
    assert approved["status"] == "resolved"
    assert balance(client, shop.a.headers) == "1000.00"
    details = assert_audited(db, alice, claim_id, "approve", "Sony lifted the ban")
    assert details["override"] == [f"****-****-{codes[1][-4:]}"]


def test_a_triaged_claim_keeps_a_deadline(
    client: httpx.Client, db: Database, shop: factories.Shop
) -> None:
    alice = issue_operator_key(db)
    claim_id, _ = eligible_claim(client, shop)
    triaged = decided(client, alice, claim_id, "triage")
    due = datetime.fromisoformat(triaged["sla"]["due_at"])
    claim = load_claim(db, claim_id)
    assert claim.triaged_at is not None
    assert due == claim.triaged_at + timedelta(hours=48)


def test_without_an_operator_key_no_method_or_body_reveals_the_admin_api(
    client: httpx.Client, db: Database, shop: factories.Shop
) -> None:
    claim_id, _ = eligible_claim(client, shop)
    for method, path, content in [
        ("DELETE", "/api/v1/admin/claims", None),
        ("GET", f"/api/v1/admin/claims/{claim_id}/approve", None),
        ("POST", f"/api/v1/admin/claims/{claim_id}/reject", b"{not json"),
        ("PUT", "/api/v1/admin", None),
    ]:
        for headers in ({}, shop.a.headers, {"Authorization": "Bearer cs_op_made-up"}):
            response = client.request(method, path, headers=headers, content=content)
            assert_problem(response, 404, "not-found")
    alice = issue_operator_key(db)
    wrong_method = client.request("DELETE", "/api/v1/admin/claims", headers=alice.headers)
    assert wrong_method.status_code == 405  # an operator is told the truth


def test_history_names_earlier_claims_on_the_same_code(
    client: httpx.Client, db: Database, shop: factories.Shop
) -> None:
    alice = issue_operator_key(db)
    first, (order_id, code) = eligible_claim_with_code(client, shop)
    decided(client, alice, first, "reject", {"reason": "r", "rule": "not_covered.account_region"})
    again = file_claim(client, shop.a.headers, claim_body(order_id, code))
    [history] = show(client, alice, again)["history"]
    assert history["other_claims_on_code"] == [first]


def eligible_claim_with_code(
    client: httpx.Client, shop: factories.Shop
) -> tuple[str, tuple[str, str]]:
    order_id, [code] = place(client, shop.a.headers)
    return file_claim(client, shop.a.headers, claim_body(order_id, code)), (order_id, code)
