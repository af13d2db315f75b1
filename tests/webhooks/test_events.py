"""The outbox (an event exactly for each committed change) and the events feed (polling)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from codeshelf.claims import service as claims
from codeshelf.kit.db import Database
from codeshelf.kit.vault import Vault
from codeshelf.webhooks import delivery
from codeshelf.webhooks.models import Delivery, Event
from tests.fixtures import factories
from tests.fixtures.claims import claim_body, file_claim, issue_operator_key, load_claim, place
from tests.fixtures.http import assert_problem, order
from tests.fixtures.receiver import Receiver

HOOKS = "/api/v1/webhook-endpoints"
ADMIN = "/api/v1/admin/claims"


def register(client: httpx.Client, headers: dict[str, str], url: str) -> dict[str, Any]:
    response = client.post(HOOKS, json={"url": url}, headers=headers)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


def feed(client: httpx.Client, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    response = client.get("/api/v1/events", params=params, headers=headers)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def counts(db: Database) -> tuple[int, int]:
    with db.read_session() as session:
        events = session.scalar(select(func.count()).select_from(Event)) or 0
        deliveries = session.scalar(select(func.count()).select_from(Delivery)) or 0
    return events, deliveries


def claim_updates(client: httpx.Client, headers: dict[str, str]) -> list[dict[str, Any]]:
    return [e["payload"] for e in feed(client, headers, type="claim.updated")["data"]]


def test_refused_orders_emit_nothing(
    hook_client: httpx.Client, db: Database, vault: Vault, shop: factories.Shop
) -> None:
    register(hook_client, shop.a.headers, "http://127.0.0.1:9/a")
    too_many = order(hook_client, shop.a.headers, {"product_id": shop.sku, "quantity": 21})
    assert_problem(too_many, 409, "insufficient-stock")

    poor = factories.add_partner(db, "Poor Co")
    factories.deposit(db, poor.id, "10.00")
    register(hook_client, poor.headers, "http://127.0.0.1:9/poor")
    assert_problem(order(hook_client, poor.headers), 402, "insufficient-funds")

    assert counts(db) == (0, 0)
    assert feed(hook_client, shop.a.headers)["data"] == []
    assert feed(hook_client, poor.headers)["data"] == []
    with httpx.Client() as sender:
        assert delivery.run_once(db, vault, sender, allow_private=True) == 0


def test_an_order_emits_created_paid_fulfilled(
    hook_client: httpx.Client, db: Database, vault: Vault, shop: factories.Shop
) -> None:
    with Receiver() as receiver:
        register(hook_client, shop.a.headers, receiver.url)
        placed = order(
            hook_client,
            shop.a.headers,
            {"product_id": shop.sku, "quantity": 2, "client_order_id": "PO-1"},
        )
        assert placed.status_code == 201, placed.text
        with httpx.Client() as sender:
            assert delivery.run_once(db, vault, sender, allow_private=True) == 3
        bodies = {json.loads(r.body)["id"]: json.loads(r.body) for r in receiver.received}
    events = feed(hook_client, shop.a.headers)["data"]
    assert [e["type"] for e in events] == ["order.created", "order.paid", "order.fulfilled"]
    assert [e["payload"]["status"] for e in events] == ["pending", "paid", "delivered"]
    for event in events:
        payload = event["payload"]
        assert payload["event"] == event["type"] and payload["id"] == event["id"]
        assert payload["order_id"] == placed.json()["id"]
        assert payload["client_order_id"] == "PO-1"
        assert payload["timestamp"]
        assert bodies[event["id"]] == payload  # the feed carries exactly the webhook body
    assert counts(db) == (3, 3)


def test_claim_filing_and_decisions_emit_claim_updated(
    hook_client: httpx.Client, db: Database, shop: factories.Shop
) -> None:
    alice = issue_operator_key(db)
    order_id, [code] = place(hook_client, shop.a.headers)
    claim_id = file_claim(hook_client, shop.a.headers, claim_body(order_id, code, remedy="refund"))
    [filed] = claim_updates(hook_client, shop.a.headers)
    assert filed["claim_id"] == claim_id and filed["order_id"] == order_id
    assert filed["status"] == "submitted" and filed["customer_message"]

    for action, body in (("triage", None), ("approve", {"reason": "PSN confirms invalid"})):
        response = hook_client.post(
            f"{ADMIN}/{claim_id}/{action}", json=body, headers=alice.headers
        )
        assert response.status_code == 200, response.text
    updates = claim_updates(hook_client, shop.a.headers)
    assert [u["status"] for u in updates][:2] == ["submitted", "triaged"]
    assert updates[-1]["status"] == "resolved"
    assert all(u["claim_id"] == claim_id and u["customer_message"] for u in updates)
    assert "refunded" in updates[-1]["customer_message"]

    # A rejection is announced too.
    other_order, [other_code] = place(hook_client, shop.a.headers)
    body = claim_body(other_order, other_code)
    body["redemption"]["account_region"] = "TR"
    rejected_id = file_claim(hook_client, shop.a.headers, body)
    response = hook_client.post(
        f"{ADMIN}/{rejected_id}/reject", json={"reason": "TR account"}, headers=alice.headers
    )
    assert response.status_code == 200, response.text
    last = claim_updates(hook_client, shop.a.headers)[-1]
    assert last["claim_id"] == rejected_id and last["status"] == "rejected"
    assert "another region" in last["customer_message"]
    assert feed(hook_client, shop.b.headers)["data"] == []


def test_a_rolled_back_change_leaves_no_event(
    hook_client: httpx.Client, db: Database, shop: factories.Shop
) -> None:
    register(hook_client, shop.a.headers, "http://127.0.0.1:9/a")
    order_id, [code] = place(hook_client, shop.a.headers)
    claim_id = file_claim(hook_client, shop.a.headers, claim_body(order_id, code, remedy="refund"))
    before = counts(db)
    with pytest.raises(RuntimeError, match="roll back"), db.session() as session:
        claims.approve(session, claim_id, claims.Actor("operator:alice"), "verified")
        raise RuntimeError("roll back")
    assert load_claim(db, claim_id).status == "submitted"
    assert counts(db) == before
    assert [u["status"] for u in claim_updates(hook_client, shop.a.headers)] == ["submitted"]


def test_the_feed_pages_filters_and_keeps_partners_apart(
    hook_client: httpx.Client, db: Database, shop: factories.Shop
) -> None:
    for _ in range(2):
        assert order(hook_client, shop.a.headers).status_code == 201
    everything = feed(hook_client, shop.a.headers)["data"]
    assert len(everything) == 6
    ids = [e["id"] for e in everything]
    with db.read_session() as session:
        assert ids == list(session.scalars(select(Event.public_id).order_by(Event.id)))
    created = [e["created_at"] for e in everything]
    assert created == sorted(created)  # oldest first

    first = feed(hook_client, shop.a.headers, limit=4)
    assert [e["id"] for e in first["data"]] == ids[:4]
    assert first["next_cursor"] == ids[3]
    second = feed(hook_client, shop.a.headers, limit=4, after=first["next_cursor"])
    assert [e["id"] for e in second["data"]] == ids[4:]
    assert second["next_cursor"] is None  # the last page: poll again after its last id
    third = feed(hook_client, shop.a.headers, limit=4, after=ids[-1])
    assert third["data"] == [] and third["next_cursor"] is None

    paid = feed(hook_client, shop.a.headers, type="order.paid")["data"]
    assert [e["id"] for e in paid] == [ids[1], ids[4]]
    two = feed(hook_client, shop.a.headers, type=["order.paid", "order.fulfilled"])["data"]
    assert [e["id"] for e in two] == [ids[1], ids[2], ids[4], ids[5]]
    after_type = feed(hook_client, shop.a.headers, type="order.paid", after=ids[1])["data"]
    assert [e["id"] for e in after_type] == [ids[4]]
    bogus = hook_client.get(
        "/api/v1/events", params={"type": "order.shipped"}, headers=shop.a.headers
    )
    assert bogus.status_code == 422

    # Partner B sees none of A's events, and cannot page from one of A's ids.
    assert feed(hook_client, shop.b.headers)["data"] == []
    for cursor in (ids[0], "evt_" + "0" * 20, "nonsense"):
        response = hook_client.get(
            "/api/v1/events", params={"after": cursor}, headers=shop.b.headers
        )
        assert_problem(response, 400, "invalid-cursor")
    assert order(hook_client, shop.b.headers).status_code == 201
    theirs = feed(hook_client, shop.b.headers)["data"]
    assert len(theirs) == 3 and not set(ids) & {e["id"] for e in theirs}
    assert [e["id"] for e in feed(hook_client, shop.a.headers)["data"]] == ids
