"""The reads the console's claim screens need, on both databases: each claimed code's history
(its batch and supplier, delivery, when the partner first saw it and how, its verdict and
decision with the rules' text, other claims on it, its batch's record), and the queue's
filters and overview counts, through the service and the operator API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select

from codeshelf.claims import service as claims
from codeshelf.claims.models import Claim
from codeshelf.claims.policy import V1_1
from codeshelf.kit.db import Database
from codeshelf.kit.vault import Vault
from codeshelf.orders import service as orders
from codeshelf.partners import service as partners
from codeshelf.stock.models import Batch
from tests.fixtures import factories
from tests.fixtures.claims import (
    claim_body,
    file_claim,
    issue_operator_key,
    place,
    reveal,
    set_claim,
)
from tests.fixtures.http import assert_problem, order

ADMIN = "/api/v1/admin/claims"
EXPOSED = "not_covered.public_exposure"
OPERATOR = claims.Actor("operator:alice")


def unrevealed_order(
    client: httpx.Client, db: Database, vault: Vault, shop: factories.Shop, quantity: int
) -> tuple[str, list[str]]:
    """An order of partner a whose codes nobody has been shown yet, and those codes (read the
    way the server reads them to file a claim: not a reveal)."""
    response = order(client, shop.a.headers, {"product_id": shop.sku, "quantity": quantity})
    assert response.status_code == 201, response.text
    order_id: str = response.json()["id"]
    with db.read_session() as session:
        partner = partners.get_partner(session, shop.a.id)
        _, codes = orders.delivered_codes(session, vault, partner, order_id)
    return order_id, [c.code for c in codes]


def histories(db: Database, claim_id: str) -> list[claims.CodeHistory]:
    with db.read_session() as session:
        return claims.history(session, claims.get_claim(session, claim_id))


def test_each_codes_history_for_the_claim_screen(
    client: httpx.Client, db: Database, vault: Vault, shop: factories.Shop
) -> None:
    order_id, codes = unrevealed_order(client, db, vault, shop, 3)
    # A portal member reveals the second code alone, to file a claim on it.
    with db.session() as session:
        partner = partners.get_partner(session, shop.a.id)
        orders.reveal_one_code(session, vault, partner, order_id, 1, "member:mbr_support")
    earlier = file_claim(client, shop.a.headers, claim_body(order_id, codes[1]))
    with db.session() as session:
        claims.reject(session, earlier, OPERATOR, "shown on a stream", EXPOSED)
    # Another code of the same batch, on another order, approved as defective.
    other_order, [other_code] = place(client, shop.a.headers)
    approved = file_claim(client, shop.a.headers, claim_body(other_order, other_code))
    with db.session() as session:
        claims.approve(session, approved, OPERATOR, "PSN: invalid")
    # The claim on screen names the third code first, then the second again.
    claim_id = file_claim(client, shop.a.headers, claim_body(order_id, codes[2], codes[1]))

    third, second = histories(db, claim_id)
    with db.read_session() as session:
        batch = session.scalars(select(Batch)).one()
        delivered_at = session.scalars(
            select(Claim.submitted_at).where(Claim.public_id == claim_id)
        ).one()
    assert [third.position, second.position] == [1, 2]
    assert third.masked.endswith(codes[2][-4:]) and codes[2][:4] not in third.masked
    for h in (third, second):
        assert h.sku == "psn-us-50" and h.state == "delivered"
        assert h.batch.reference == batch.reference and h.batch.supplier == "Test Supply"
        assert h.delivered_at is not None and h.delivered_at <= delivered_at
        assert h.verdict == "eligible"
        assert h.verdict_rule == claims.PolicyRule(
            "covered.invalid", V1_1.rule("covered.invalid").text, covered=True
        )
        assert h.decision is None and h.decision_rule is None
        # The batch: two other claims, three of its codes claimed, one confirmed defective.
        assert h.batch.other_claims == tuple(sorted([earlier, approved]))
        assert h.batch.claims == 2
        assert h.batch.claimed_codes == 3 and h.batch.defective == 1
    # Never shown to the partner: the server read it to file the claim, which is no reveal.
    assert third.reveals == () and third.first_revealed is None
    # Shown once, alone, to a portal member.
    [alone] = second.reveals
    assert second.first_revealed == alone
    assert alone.actor == "member:mbr_support" and alone.api_key_id is None
    assert alone.whole_order is False
    assert third.order_reveals == second.order_reveals == 1
    # Claimed before, and rejected: a changed story?
    [before] = second.other_claims
    assert (before.claim_id, before.status, before.decision) == (earlier, "rejected", "rejected")
    assert before.decision_rule == EXPOSED
    assert third.other_claims == ()

    # The partner fetches the whole order through the API: every code is now revealed.
    reveal(client, shop.a.headers, order_id)
    third, second = histories(db, claim_id)
    assert third.first_revealed is not None
    assert third.first_revealed.actor == f"partner:{shop.a.id}"
    assert third.first_revealed.api_key_id == shop.a.key_id
    assert third.first_revealed.whole_order is True
    assert len(second.reveals) == 2 and second.first_revealed == alone
    assert second.order_reveals == 2 and second.order_first_revealed_at == alone.at

    # Decided: the rejected code's rule, with its text.
    with db.session() as session:
        claims.decide(session, claim_id, OPERATOR, "exposed", reject=[1], rule=EXPOSED)
    third, _ = histories(db, claim_id)
    assert third.decision == "rejected" and third.decided_at is not None
    assert third.decision_rule == claims.PolicyRule(EXPOSED, V1_1.rule(EXPOSED).text, False)

    # The operator API shows the same facts.
    alice = issue_operator_key(db)
    shown = client.get(f"{ADMIN}/{claim_id}", headers=alice.headers).json()["history"]
    assert [h["position"] for h in shown] == [1, 2]
    assert shown[0]["reveals"] == 1 and shown[1]["reveals"] == 2
    assert shown[1]["first_revealed_by"] == "member:mbr_support"
    assert shown[0]["first_revealed_by"] == f"partner:{shop.a.id}"
    assert shown[1]["retrievals"] == 2
    assert shown[1]["other_claims_on_code"] == [earlier]
    assert shown[0]["batch_claimed_codes"] == 3 and shown[0]["batch_defective"] == 1


def test_queue_filters_and_overview(
    client: httpx.Client, db: Database, shop: factories.Shop
) -> None:
    alice = issue_operator_key(db)
    now = datetime.now(UTC)

    def claim(partner: factories.PartnerHandle) -> str:
        order_id, [code] = place(client, partner.headers)
        return file_claim(client, partner.headers, claim_body(order_id, code))

    fresh = claim(shop.a)  # due in 24 hours
    soon = claim(shop.a)
    set_claim(db, soon, due_at=now + timedelta(hours=2))
    late = claim(shop.b)
    set_claim(db, late, due_at=now - timedelta(hours=1))
    by_email = claim(shop.b)
    set_claim(db, by_email, channel="operator", priority=2, due_at=now + timedelta(hours=3))
    waiting = claim(shop.a)
    with db.session() as session:
        claims.request_info(session, waiting, OPERATOR, "the PSN screenshot")
    closed = claim(shop.a)
    with db.session() as session:
        claims.reject(session, closed, OPERATOR, "r", EXPOSED)
    old = claim(shop.b)
    set_claim(db, old, submitted_at=now - timedelta(days=3))

    def queued(**filters: Any) -> list[str]:
        with db.read_session() as session:
            return [c.public_id for c in claims.queue(session, **filters)]

    everything = queued()
    assert everything[0] == late and everything[-1] == waiting and closed not in everything
    assert queued(partner=shop.a.id) == [soon, fresh, waiting]
    assert queued(channel="operator") == [by_email]
    assert queued(due_within=timedelta(hours=4)) == [late, soon, by_email]
    assert queued(due_within=timedelta(hours=4), channel="api") == [late, soon]
    assert queued(overdue=True) == [late]
    assert queued(status="needs_info", partner=shop.a.id) == [waiting]

    with db.read_session() as session:
        counts = claims.overview(session)
    assert (counts.overdue, counts.due_soon, counts.waiting_on_partner) == (1, 2, 1)
    assert counts.open == 6 and counts.filed == 7
    assert len(counts.filed_per_day) == 30
    days = dict(counts.filed_per_day)
    assert counts.filed_per_day[-1] == (now.date(), 6)
    assert days[now.date() - timedelta(days=3)] == 1
    assert counts.filed_per_day[0][0] == now.date() - timedelta(days=29)
    set_claim(db, old, submitted_at=now - timedelta(days=30))  # a day too early
    with db.read_session() as session:
        assert claims.overview(session).filed == 6

    # The operator API: the same filters, and the overview.
    def api(**params: str | int | bool) -> list[str]:
        response = client.get(ADMIN, params=params, headers=alice.headers)
        assert response.status_code == 200, response.text
        return [c["id"] for c in response.json()["data"]]

    assert api(partner=shop.a.id) == [soon, fresh, waiting]
    assert api(due_within_hours=4, channel="api") == [late, soon]
    assert api(channel="operator", overdue=True) == []
    response = client.get(f"{ADMIN}/overview", headers=alice.headers)
    assert response.status_code == 200, response.text
    overview = response.json()
    assert overview["overdue"] == 1 and overview["due_soon"] == 2
    assert overview["waiting_on_partner"] == 1 and overview["open"] == 6
    assert overview["filed_per_day"][-1] == {"day": now.date().isoformat(), "claims": 6}
    assert len(overview["filed_per_day"]) == 30
    for params in ({"channel": "email"}, {"due_within_hours": 0}, {"partner": "x" * 65}):
        refused = client.get(ADMIN, params=params, headers=alice.headers)
        assert_problem(refused, 422, "validation-error")
    unknown = client.get(ADMIN, params={"partner": "ptr_nobody"}, headers=alice.headers)
    assert_problem(unknown, 404, "partner-not-found")
    # Partners do not reach the overview.
    assert_problem(client.get(f"{ADMIN}/overview", headers=shop.a.headers), 404, "not-found")
