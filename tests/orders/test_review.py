"""Manual review of orders, end to end on both databases: the limits that hold an order (set per
partner with `codeshelf partner limits`, or operator-wide), unusually large orders, the money held
meanwhile, the operator's decisions over the admin API and the CLI, and what each leaves behind.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from typer.testing import Result

from codeshelf.invariants import check_all
from codeshelf.kit.clock import utcnow
from codeshelf.kit.db import Database
from codeshelf.kit.settings import Settings
from codeshelf.kit.vault import Vault
from codeshelf.orders.models import Order
from codeshelf.orders.service import fulfilment
from codeshelf.partners import service as partners
from codeshelf.wallet.models import LedgerTransaction
from codeshelf.webhooks.models import Event
from tests.fixtures import factories
from tests.fixtures.claims import OperatorKeyHandle, audit_events, issue_operator_key
from tests.fixtures.factories import PartnerHandle, Shop
from tests.fixtures.http import (
    assert_problem,
    available_codes,
    balance,
    order,
    order_count,
    second_while_first_is_open,
)
from tests.fixtures.servers import serve

ADMIN = "/api/v1/admin/orders"
REVIEW_MESSAGE = (
    "Your order is being checked by our team before delivery. This usually takes less than one "
    "business day."
)
DELAYED_MESSAGE = (
    "Your order is delayed while we restock. It will be delivered as soon as the codes arrive, "
    "and you will not be charged if it cannot be completed."
)
FAILED_MESSAGE = "We could not complete your order, and you have not been charged."


# --- helpers ----------------------------------------------------------------------------------


def cli(database_url: str, *args: str) -> Result:
    return factories.run_cli(database_url, *args)


def ok(result: Result) -> Any:
    """The one JSON document a successful --json command printed."""
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return json.loads(result.stdout)


def refused(result: Result) -> str:
    """A clean refusal: exit code 1, nothing on stdout, one "error: …" on stderr."""
    assert result.exit_code == 1, (result.exit_code, result.stdout, result.stderr)
    assert result.stdout == ""
    assert result.stderr.startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    return result.stderr


def set_limits(database_url: str, partner_id: str, *options: str) -> dict[str, Any]:
    data: dict[str, Any] = ok(
        cli(database_url, "partner", "limits", partner_id, *options, "--json")
    )
    return data


def buy(
    client: httpx.Client, partner: PartnerHandle, quantity: int, **extra: Any
) -> dict[str, Any]:
    sku = extra.pop("sku", "psn-us-50")
    response = order(client, partner.headers, {"product_id": sku, "quantity": quantity, **extra})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def held(client: httpx.Client, headers: dict[str, str], currency: str = "USD") -> str:
    response = client.get("/api/v1/balance", headers=headers)
    assert response.status_code == 200, response.text
    amounts: dict[str, str] = {r["currency"]: r["amount"] for r in response.json()["held"]}
    return amounts.get(currency, "0.00")


def events_of(client: httpx.Client, headers: dict[str, str], order_id: str) -> list[str]:
    response = client.get("/api/v1/events", params={"limit": 500}, headers=headers)
    assert response.status_code == 200, response.text
    return [e["type"] for e in response.json()["data"] if e["payload"].get("order_id") == order_id]


def fetch(client: httpx.Client, headers: dict[str, str], order_id: str) -> dict[str, Any]:
    response = client.get(f"/api/v1/orders/{order_id}", headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def queue(client: httpx.Client, operator: OperatorKeyHandle) -> list[dict[str, Any]]:
    response = client.get(f"{ADMIN}/review", headers=operator.headers)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def decide(
    client: httpx.Client,
    operator: OperatorKeyHandle,
    order_id: str,
    decision: str,
    reason: str = "checked with the partner",
) -> httpx.Response:
    return client.post(
        f"{ADMIN}/{order_id}/review",
        json={"decision": decision, "reason": reason},
        headers=operator.headers,
    )


def decided(
    client: httpx.Client, operator: OperatorKeyHandle, order_id: str, decision: str
) -> dict[str, Any]:
    response = decide(client, operator, order_id, decision)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def assert_held_for_review(body: dict[str, Any]) -> None:
    assert body["status"] == "pending"
    assert body["review_required"] is True
    assert body["waiting_for"] == "review"
    assert body["customer_message"] == REVIEW_MESSAGE
    assert body["delivered_at"] is None and body["failure_reason"] is None


def assert_delivered(body: dict[str, Any]) -> None:
    assert body["status"] == "delivered", body
    assert body["review_required"] is False and body["waiting_for"] is None
    assert body["customer_message"] == "Your code is ready."
    assert body["delivered_at"] is not None


def assert_consistent(db: Database) -> None:
    with db.read_session() as session:
        assert check_all(session) == []


def import_codes(database_url: str, tmp_path: Path, count: int, batch: str) -> None:
    """Stock arriving through the operator's CLI (which then serves waiting backorders)."""
    path = tmp_path / f"{batch}.txt"
    path.write_text("\n".join(factories.random_code() for _ in range(count)) + "\n")
    result = cli(database_url, "stock", "import", str(path), "--sku", "psn-us-50", "--batch", batch)
    assert result.exit_code == 0, (result.stdout, result.stderr)


@pytest.fixture
def alice(db: Database) -> OperatorKeyHandle:
    return issue_operator_key(db, "alice")


@contextmanager
def serve_with(settings: Settings, db: Database, **update: Any) -> Iterator[httpx.Client]:
    with serve(settings.model_copy(update=update), db) as http:
        yield http


@pytest.fixture
def default_limit_client(settings: Settings, db: Database) -> Iterator[httpx.Client]:
    """The API with CODESHELF_REVIEW_QUANTITY_OVER=5."""
    with serve_with(settings, db, review_quantity_over=5) as client:
        yield client


# --- what holds an order ----------------------------------------------------------------------


def test_an_order_above_the_partners_quantity_limit_waits_for_review(
    client: httpx.Client, db: Database, database_url: str, shop: Shop
) -> None:
    limits = set_limits(database_url, shop.a.id, "--quantity-over", "5")
    assert limits == {"partner_id": shop.a.id, "quantity_over": 5, "amount_over": None}

    response = order(
        client, shop.a.headers, {"product_id": shop.sku, "quantity": 6}, key="review-key-1"
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert_held_for_review(body)
    assert body["total"] == {"amount": "279.00", "currency": "USD"}
    assert response.headers["location"] == f"/api/v1/orders/{body['id']}"
    # The money is set aside, not spent; no code has left the stock.
    assert balance(client, shop.a.headers) == "721.00"
    assert held(client, shop.a.headers) == "279.00"
    assert available_codes(db) == 20
    assert events_of(client, shop.a.headers, body["id"]) == [
        "order.created",
        "order.review_required",
    ]
    feed = client.get(
        "/api/v1/events", params={"type": "order.review_required"}, headers=shop.a.headers
    )
    [event] = feed.json()["data"]
    assert event["payload"]["order_id"] == body["id"]
    assert event["payload"]["status"] == "pending"
    assert event["payload"]["review_required"] is True
    assert event["payload"]["total"] == {"amount": "279.00", "currency": "USD"}
    assert fetch(client, shop.a.headers, body["id"]) == body
    assert_problem(client.get(body["codes_url"], headers=shop.a.headers), 409, "codes-not-ready")

    # A retry with the same key is the same held order, not a second hold.
    again = order(
        client, shop.a.headers, {"product_id": shop.sku, "quantity": 6}, key="review-key-1"
    )
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == body["id"]
    assert held(client, shop.a.headers) == "279.00"

    # At the limit, and for another partner, orders are delivered at once.
    assert_delivered(buy(client, shop.a, 5))
    assert_delivered(buy(client, shop.b, 6))
    assert held(client, shop.a.headers) == "279.00"
    assert balance(client, shop.a.headers) == "488.50"
    assert_consistent(db)


def test_the_quantity_limit_counts_every_line_of_an_order(
    client: httpx.Client, db: Database, database_url: str, shop: Shop, vault: Vault
) -> None:
    factories.add_product(db, "psn-us-10", face="10", price="9.30")
    factories.load_codes(db, vault, "psn-us-10", 10)
    set_limits(database_url, shop.a.id, "--quantity-over", "5")
    lines = [{"product_id": shop.sku, "quantity": 3}, {"product_id": "psn-us-10", "quantity": 3}]
    response = order(client, shop.a.headers, {"items": lines})
    assert response.status_code == 201, response.text
    assert_held_for_review(response.json())
    assert held(client, shop.a.headers) == "167.40"
    assert_consistent(db)


def test_an_amount_limit_holds_orders_costing_more_in_its_currency(
    client: httpx.Client, db: Database, database_url: str, shop: Shop
) -> None:
    # A limit in euros says nothing about an order paid in dollars.
    set_limits(database_url, shop.a.id, "--amount-over", "100 EUR")
    assert_delivered(buy(client, shop.a, 4))  # 186.00 USD

    limits = set_limits(database_url, shop.a.id, "--amount-over", "139.50 USD")
    assert limits["amount_over"] == {"amount": "139.50", "currency": "USD"}
    assert_delivered(buy(client, shop.a, 3))  # 139.50: at the limit
    above = buy(client, shop.a, 4)  # 186.00
    assert_held_for_review(above)
    assert held(client, shop.a.headers) == "186.00"
    assert balance(client, shop.a.headers) == "488.50"  # 1000 - 186 - 139.50 - 186 held
    assert events_of(client, shop.a.headers, above["id"]) == [
        "order.created",
        "order.review_required",
    ]
    assert_consistent(db)


def test_the_operator_wide_default_applies_unless_a_partner_has_its_own(
    default_limit_client: httpx.Client, db: Database, database_url: str, shop: Shop
) -> None:
    client = default_limit_client
    assert_delivered(buy(client, shop.a, 5))
    assert_held_for_review(buy(client, shop.a, 6))

    # A partner's own limit takes precedence, above the default as well as below it.
    set_limits(database_url, shop.b.id, "--quantity-over", "7")
    assert_delivered(buy(client, shop.b, 7))
    assert_held_for_review(buy(client, shop.b, 8))
    set_limits(database_url, shop.b.id, "--quantity-over", "1")
    assert_held_for_review(buy(client, shop.b, 2))
    # Without options the partner is back on the default.
    assert set_limits(database_url, shop.b.id) == {
        "partner_id": shop.b.id,
        "quantity_over": None,
        "amount_over": None,
    }
    assert_delivered(buy(client, shop.b, 2))

    assert held(client, shop.a.headers) == "279.00"
    assert held(client, shop.b.headers) == "465.00"  # 8 + 2 codes
    assert_consistent(db)


# --- unusually large orders -------------------------------------------------------------------


def cheap_shop(db: Database, vault: Vault, codes: int) -> tuple[PartnerHandle, PartnerHandle]:
    """psn-us-1 at 1.00 USD with ``codes`` in stock, and two partners with 1000.00 USD."""
    factories.add_product(db, "psn-us-1", face="1", price="1.00")
    factories.load_codes(db, vault, "psn-us-1", codes)
    first = factories.add_partner(db, "Usual Co")
    second = factories.add_partner(db, "Newcomer Co")
    for partner in (first, second):
        factories.deposit(db, partner.id, "1000.00")
    return first, second


def test_an_order_far_above_the_usual_size_and_the_floor_is_held(
    client: httpx.Client, db: Database, vault: Vault
) -> None:
    usual, newcomer = cheap_shop(db, vault, 215)
    for _ in range(5):
        assert_delivered(buy(client, usual, 1, sku="psn-us-1"))
    # 100 codes is a hundred times the usual order, but not above the floor of 100.
    assert_delivered(buy(client, usual, 100, sku="psn-us-1"))
    big = buy(client, usual, 101, sku="psn-us-1")
    assert_held_for_review(big)
    assert held(client, usual.headers) == "101.00"
    assert events_of(client, usual.headers, big["id"]) == [
        "order.created",
        "order.review_required",
    ]

    # With fewer than 5 delivered orders there is no usual size to compare with.
    for _ in range(4):
        assert_delivered(buy(client, newcomer, 1, sku="psn-us-1"))
    assert_delivered(buy(client, newcomer, 101, sku="psn-us-1"))
    assert_consistent(db)


def test_the_usual_size_is_the_median_of_the_latest_orders(
    settings: Settings, db: Database, vault: Vault
) -> None:
    usual, _ = cheap_shop(db, vault, 60)
    with serve_with(settings, db, review_unusual_floor=10) as client:
        for size in (2, 2, 9, 1, 2):  # median 2: more than 20 codes is unusual
            assert_delivered(buy(client, usual, size, sku="psn-us-1"))
        assert_delivered(buy(client, usual, 20, sku="psn-us-1"))
        assert_held_for_review(buy(client, usual, 21, sku="psn-us-1"))
        # A held order is not part of the history: the median is still 2.
        assert_held_for_review(buy(client, usual, 21, sku="psn-us-1"))
    assert_consistent(db)


def test_an_even_history_has_a_median_between_its_middle_sizes(
    settings: Settings, db: Database, vault: Vault
) -> None:
    usual, _ = cheap_shop(db, vault, 40)
    with serve_with(settings, db, review_unusual_floor=10) as client:
        for size in (1, 1, 1, 2, 2, 2):  # median 1.5: more than 15 codes is unusual
            assert_delivered(buy(client, usual, size, sku="psn-us-1"))
        assert_delivered(buy(client, usual, 12, sku="psn-us-1"))
    assert_consistent(db)


# --- the operator's decisions over the API ----------------------------------------------------


def test_the_queue_lists_held_live_orders_with_their_reasons(
    client: httpx.Client, db: Database, database_url: str, shop: Shop, alice: OperatorKeyHandle
) -> None:
    set_limits(database_url, shop.a.id, "--quantity-over", "5", "--amount-over", "200 USD")
    set_limits(database_url, shop.b.id, "--quantity-over", "2")
    first = buy(client, shop.a, 6, client_order_id="PO-6")
    buy(client, shop.a, 1)  # delivered: not in the queue
    second = buy(client, shop.b, 3)

    listed = queue(client, alice)
    assert [o["id"] for o in listed] == [first["id"], second["id"]]  # oldest first
    assert listed[0]["partner_id"] == shop.a.id
    assert listed[0]["client_order_id"] == "PO-6"
    assert listed[0]["review_required"] is True and listed[0]["waiting_for"] == "review"
    assert listed[0]["review_reasons"] == (
        "6 codes is above the limit of 5; 279.00 USD is above the limit of 200.00 USD"
    )
    assert listed[1]["partner_id"] == shop.b.id
    assert listed[1]["review_reasons"] == "3 codes is above the limit of 2"

    # To a partner's key the admin API does not exist.
    assert_problem(client.get(f"{ADMIN}/review", headers=shop.a.headers), 404, "not-found")
    response = client.post(
        f"{ADMIN}/{first['id']}/review",
        json={"decision": "approve", "reason": "mine"},
        headers=shop.a.headers,
    )
    assert_problem(response, 404, "not-found")
    assert_problem(client.get(f"{ADMIN}/review"), 404, "not-found")
    assert fetch(client, shop.a.headers, first["id"])["status"] == "pending"
    assert_consistent(db)


def test_approving_delivers_the_order_from_its_hold(
    client: httpx.Client, db: Database, database_url: str, shop: Shop, alice: OperatorKeyHandle
) -> None:
    set_limits(database_url, shop.a.id, "--quantity-over", "5")
    placed = buy(client, shop.a, 6)
    response = decide(client, alice, placed["id"], "approve", "known customer, big promo")
    assert response.status_code == 200, response.text
    approved = response.json()
    assert_delivered(approved)
    assert approved["id"] == placed["id"] and approved["partner_id"] == shop.a.id

    assert fetch(client, shop.a.headers, placed["id"])["status"] == "delivered"
    assert balance(client, shop.a.headers) == "721.00"
    assert held(client, shop.a.headers) == "0.00"
    codes = client.get(placed["codes_url"], headers=shop.a.headers)
    assert codes.status_code == 200 and codes.json()["count"] == 6
    assert set(c["code"] for c in codes.json()["codes"]) <= set(shop.codes)
    assert events_of(client, shop.a.headers, placed["id"]) == [
        "order.created",
        "order.review_required",
        "order.paid",
        "order.fulfilled",
    ]
    [entry] = audit_events(db, placed["id"], "order.review_approve")
    assert entry.actor == "operator:alice"
    assert entry.partner_public_id == shop.a.id
    assert entry.details == {"reason": "known customer, big promo"}
    assert queue(client, alice) == []

    # Decided once: a second decision, either way, is refused and changes nothing.
    for decision in ("approve", "reject"):
        assert_problem(decide(client, alice, placed["id"], decision), 409, "order-not-under-review")
    assert fetch(client, shop.a.headers, placed["id"])["status"] == "delivered"
    assert len(audit_events(db, placed["id"])) == 2  # the approval and the codes' reveal
    assert_consistent(db)


def test_rejecting_fails_the_order_and_gives_the_money_back(
    client: httpx.Client, db: Database, database_url: str, shop: Shop, alice: OperatorKeyHandle
) -> None:
    set_limits(database_url, shop.a.id, "--quantity-over", "5")
    placed = buy(client, shop.a, 6)
    rejected = decided(client, alice, placed["id"], "reject")
    assert rejected["status"] == "failed"
    assert rejected["failure_reason"] == "review_rejected"
    assert rejected["review_required"] is False and rejected["waiting_for"] is None
    assert rejected["customer_message"] == FAILED_MESSAGE

    assert fetch(client, shop.a.headers, placed["id"]) == {
        k: v for k, v in rejected.items() if k not in ("partner_id", "review_reasons")
    }
    assert balance(client, shop.a.headers) == "1000.00"
    assert held(client, shop.a.headers) == "0.00"
    assert available_codes(db) == 20
    assert events_of(client, shop.a.headers, placed["id"]) == [
        "order.created",
        "order.review_required",
        "order.failed",
    ]
    [entry] = audit_events(db, placed["id"], "order.review_reject")
    assert entry.actor == "operator:alice"
    assert entry.details == {"reason": "checked with the partner"}
    assert_problem(decide(client, alice, placed["id"], "approve"), 409, "order-not-under-review")
    assert_problem(client.get(placed["codes_url"], headers=shop.a.headers), 409, "codes-not-ready")
    assert_consistent(db)


def test_a_decision_needs_a_reason_and_an_order_under_review(
    client: httpx.Client, db: Database, database_url: str, shop: Shop, alice: OperatorKeyHandle
) -> None:
    set_limits(database_url, shop.a.id, "--quantity-over", "5")
    placed = buy(client, shop.a, 6)
    delivered = buy(client, shop.a, 1)
    url = f"{ADMIN}/{placed['id']}/review"
    for body in (
        {"decision": "approve"},
        {"decision": "approve", "reason": ""},
        {"decision": "maybe", "reason": "hmm"},
        {"decision": "approve", "reason": "ok", "notify": False},
    ):
        response = client.post(url, json=body, headers=alice.headers)
        assert response.status_code == 422, (body, response.text)
    assert_problem(decide(client, alice, "ord_00000000000000000000", "approve"), 404, "not-found")
    assert_problem(decide(client, alice, "nonsense", "reject"), 404, "not-found")
    assert_problem(decide(client, alice, delivered["id"], "reject"), 409, "order-not-under-review")

    assert fetch(client, shop.a.headers, placed["id"])["waiting_for"] == "review"
    assert audit_events(db, placed["id"]) == []
    assert held(client, shop.a.headers) == "279.00"
    assert_consistent(db)


@pytest.mark.live  # concurrent transactions: real commits
def test_two_racing_decisions_decide_once(
    client: httpx.Client, db: Database, database_url: str, shop: Shop, alice: OperatorKeyHandle
) -> None:
    set_limits(database_url, shop.a.id, "--quantity-over", "5")
    placed = buy(client, shop.a, 6)

    def approve(session: Any) -> None:
        fulfilment.decide_review(
            session,
            placed["id"],
            approve=True,
            actor="operator:bob",
            reason="first",
            now=utcnow(),
            live_only=True,
        )

    second = second_while_first_is_open(
        db, approve, lambda: decide(client, alice, placed["id"], "reject")
    )
    assert_problem(second, 409, "order-not-under-review")
    assert fetch(client, shop.a.headers, placed["id"])["status"] == "delivered"
    assert [e.actor for e in audit_events(db, placed["id"])] == ["operator:bob"]
    assert balance(client, shop.a.headers) == "721.00"
    assert held(client, shop.a.headers) == "0.00"
    assert_consistent(db)


# --- approval without stock -------------------------------------------------------------------


def test_an_approved_backorder_without_stock_waits_for_the_next_import(
    client: httpx.Client,
    db: Database,
    database_url: str,
    shop: Shop,
    alice: OperatorKeyHandle,
    tmp_path: Path,
) -> None:
    set_limits(database_url, shop.a.id, "--quantity-over", "5")
    placed = buy(client, shop.a, 21, allow_backorder=True)  # one more than the stock
    assert_held_for_review(placed)
    assert placed["allow_backorder"] is True and placed["backorder_until"] is not None

    approved = decided(client, alice, placed["id"], "approve")
    assert approved["status"] == "pending"
    assert approved["waiting_for"] == "stock" and approved["review_required"] is False
    assert approved["customer_message"] == DELAYED_MESSAGE
    assert held(client, shop.a.headers) == "976.50"
    assert balance(client, shop.a.headers) == "23.50"
    assert queue(client, alice) == []
    assert_consistent(db)
    # It waits for stock that arrives after it: what is in stock stays on sale meanwhile.
    assert order(client, shop.b.headers).json()["status"] == "delivered"

    import_codes(database_url, tmp_path, 4, "B-LATER")  # 19 left + 4 arrived: its 21, 2 over
    delivered = fetch(client, shop.a.headers, placed["id"])
    assert_delivered(delivered)
    assert held(client, shop.a.headers) == "0.00"
    assert events_of(client, shop.a.headers, placed["id"]) == [
        "order.created",
        "order.review_required",
        "order.paid",
        "order.fulfilled",
    ]
    codes = client.get(placed["codes_url"], headers=shop.a.headers)
    assert codes.status_code == 200 and codes.json()["count"] == 21
    assert balance(client, shop.a.headers) == "23.50"
    assert available_codes(db) == 2
    assert_consistent(db)


def test_an_approved_order_without_stock_or_backorder_fails_out_of_stock(
    client: httpx.Client, db: Database, database_url: str, shop: Shop, alice: OperatorKeyHandle
) -> None:
    set_limits(database_url, shop.a.id, "--quantity-over", "5")
    placed = buy(client, shop.a, 8)
    assert_delivered(buy(client, shop.b, 15))  # leaves 5 codes: fewer than the order needs
    assert balance(client, shop.a.headers) == "628.00"  # 8 codes held

    approved = decided(client, alice, placed["id"], "approve")
    assert approved["status"] == "failed" and approved["failure_reason"] == "out_of_stock"
    assert approved["customer_message"] == FAILED_MESSAGE
    assert balance(client, shop.a.headers) == "1000.00"
    assert held(client, shop.a.headers) == "0.00"
    assert available_codes(db) == 5
    assert events_of(client, shop.a.headers, placed["id"]) == [
        "order.created",
        "order.review_required",
        "order.failed",
    ]
    [entry] = audit_events(db, placed["id"])
    assert entry.action == "order.review_approve"
    assert_consistent(db)


def test_an_order_over_the_limit_that_stock_cannot_fill_is_refused_at_once(
    client: httpx.Client, db: Database, database_url: str, shop: Shop
) -> None:
    # Holding it for review would only fail it at approval: without allow_backorder, say so now.
    set_limits(database_url, shop.a.id, "--quantity-over", "5")
    refused = order(client, shop.a.headers, {"product_id": "psn-us-50", "quantity": 21})
    assert_problem(refused, 409, "insufficient-stock")
    assert balance(client, shop.a.headers) == "1000.00"
    assert held(client, shop.a.headers) == "0.00"
    assert order_count(db) == 0
    # With allow_backorder it is accepted, for review first.
    waiting = buy(client, shop.a, 21, allow_backorder=True)
    assert_held_for_review(waiting)
    assert_consistent(db)


def test_an_approved_order_does_not_take_stock_set_aside_for_an_earlier_backorder(
    client: httpx.Client,
    db: Database,
    database_url: str,
    shop: Shop,
    alice: OperatorKeyHandle,
    tmp_path: Path,
) -> None:
    factories.deposit(db, shop.b.id, "1000.00")
    waiting = buy(client, shop.b, 30, allow_backorder=True)  # 20 in stock, none set aside
    assert waiting["waiting_for"] == "stock"
    import_codes(database_url, tmp_path, 5, "B-FIRST")  # these 5 arrive for the backorder
    set_limits(database_url, shop.a.id, "--quantity-over", "5")
    reviewed = buy(client, shop.a, 21, allow_backorder=True)

    decided(client, alice, reviewed["id"], "approve")
    # 25 in stock, 5 set aside: the approved order of 21 waits, as a new backorder would...
    assert fetch(client, shop.a.headers, reviewed["id"])["waiting_for"] == "stock"
    # ...behind the earlier one, which 5 more codes complete.
    import_codes(database_url, tmp_path, 5, "B-FIFO")
    assert fetch(client, shop.b.headers, waiting["id"])["status"] == "delivered"
    assert fetch(client, shop.a.headers, reviewed["id"])["waiting_for"] == "stock"
    assert_consistent(db)


# --- the CLI ----------------------------------------------------------------------------------


def test_the_cli_lists_approves_and_rejects(
    client: httpx.Client, db: Database, database_url: str, shop: Shop
) -> None:
    set_limits(database_url, shop.a.id, "--quantity-over", "5")
    first = buy(client, shop.a, 6, client_order_id="PO-1")
    second = buy(client, shop.a, 7)

    listed = ok(cli(database_url, "orders", "review", "list", "--json"))
    assert [row["id"] for row in listed] == [first["id"], second["id"]]
    assert listed[0]["partner_id"] == shop.a.id
    assert listed[0]["client_order_id"] == "PO-1"
    assert listed[0]["quantity"] == 6
    assert listed[0]["total"] == {"amount": "279.00", "currency": "USD"}
    assert listed[0]["review_reasons"] == "6 codes is above the limit of 5"
    assert listed[0]["status"] == "pending" and listed[0]["waiting_for"] == "review"
    table = cli(database_url, "orders", "review", "list")
    assert table.exit_code == 0, table.stderr
    assert "Orders held for review" in table.stdout and "279.00 USD" in table.stdout

    approve = cli(
        database_url,
        *("orders", "review", "approve", first["id"]),
        *("--reason", "called the partner", "--operator", "bob", "--json"),
    )
    assert ok(approve)["status"] == "delivered"
    reject = cli(
        database_url,
        *("orders", "review", "reject", second["id"], "--reason", "fraud pattern"),
        *("--operator", "carol"),
    )
    assert reject.exit_code == 0, reject.stderr
    assert f"{second['id']}: failed" in reject.stdout

    assert fetch(client, shop.a.headers, first["id"])["status"] == "delivered"
    rejected = fetch(client, shop.a.headers, second["id"])
    assert rejected["status"] == "failed" and rejected["failure_reason"] == "review_rejected"
    [approval] = audit_events(db, first["id"], "order.review_approve")
    assert approval.actor == "operator:bob"
    assert approval.details == {"reason": "called the partner"}
    [rejection] = audit_events(db, second["id"], "order.review_reject")
    assert rejection.actor == "operator:carol"
    assert balance(client, shop.a.headers) == "721.00"
    assert held(client, shop.a.headers) == "0.00"
    assert ok(cli(database_url, "orders", "review", "list", "--json")) == []
    assert_consistent(db)


def test_the_cli_refuses_unknown_and_decided_orders_cleanly(
    client: httpx.Client, db: Database, database_url: str, shop: Shop
) -> None:
    set_limits(database_url, shop.a.id, "--quantity-over", "5")
    placed = buy(client, shop.a, 6)
    for verb in ("approve", "reject"):
        for unknown in ("ord_00000000000000000000", "nonsense"):
            result = cli(database_url, "orders", "review", verb, unknown, "--reason", "x")
            assert unknown in refused(result)
    # --reason is required.
    missing = cli(database_url, "orders", "review", "approve", placed["id"])
    assert missing.exit_code == 2 and "--reason" in missing.stderr
    assert fetch(client, shop.a.headers, placed["id"])["waiting_for"] == "review"

    done = cli(database_url, "orders", "review", "reject", placed["id"], "--reason", "no")
    assert done.exit_code == 0, done.stderr
    again = cli(database_url, "orders", "review", "approve", placed["id"], "--reason", "yes")
    assert "not waiting for review" in refused(again)
    assert fetch(client, shop.a.headers, placed["id"])["failure_reason"] == "review_rejected"
    assert len(audit_events(db, placed["id"])) == 1
    assert_consistent(db)


# --- refusals and the sandbox -----------------------------------------------------------------


def test_an_order_the_wallet_cannot_hold_is_refused_and_leaves_nothing(
    client: httpx.Client, db: Database, database_url: str, vault: Vault
) -> None:
    factories.add_product(db)
    factories.load_codes(db, vault, "psn-us-50", 5)
    poor = factories.add_partner(db, "Poor Co")
    factories.deposit(db, poor.id, "100.00")
    set_limits(database_url, poor.id, "--quantity-over", "1")
    with db.read_session() as session:
        transactions = session.scalar(select(func.count()).select_from(LedgerTransaction))

    response = order(client, poor.headers, {"product_id": "psn-us-50", "quantity": 3})
    body = assert_problem(response, 402, "insufficient-funds")
    assert body["balance"] == {"amount": "100.00", "currency": "USD"}

    assert order_count(db) == 0
    assert balance(client, poor.headers) == "100.00"
    assert held(client, poor.headers) == "0.00"
    assert available_codes(db) == 5
    with db.read_session() as session:
        assert session.scalar(select(func.count()).select_from(Event)) == 0
        assert session.scalar(select(func.count()).select_from(LedgerTransaction)) == transactions
    assert ok(cli(database_url, "orders", "review", "list", "--json")) == []
    assert_consistent(db)


def test_sandbox_review_orders_are_not_the_operators_to_decide(
    client: httpx.Client, db: Database, database_url: str, shop: Shop, alice: OperatorKeyHandle
) -> None:
    with db.session() as session:
        issued = partners.create_key(session, shop.a.id, mode="test")
    test_headers = {"Authorization": f"Bearer {issued.secret}"}
    assert issued.secret.startswith("cs_test_")
    funded = client.post(
        "/api/v1/sandbox/deposits",
        json={"amount": "500.00", "currency": "USD"},
        headers=test_headers,
    )
    assert funded.status_code == 201, funded.text

    rehearsal = order(
        client,
        test_headers,
        {"product_id": shop.sku, "quantity": 2, "client_order_id": "test_review_1"},
    )
    assert rehearsal.status_code == 201, rehearsal.text
    placed = rehearsal.json()
    assert_held_for_review(placed)
    assert held(client, test_headers) == "93.00"
    assert held(client, shop.a.headers) == "0.00"
    assert balance(client, shop.a.headers) == "1000.00"

    assert queue(client, alice) == []
    assert ok(cli(database_url, "orders", "review", "list", "--json")) == []
    assert_problem(decide(client, alice, placed["id"], "approve"), 404, "order-not-found")
    refused(cli(database_url, "orders", "review", "reject", placed["id"], "--reason", "x"))
    assert fetch(client, test_headers, placed["id"])["waiting_for"] == "review"
    assert audit_events(db, placed["id"]) == []

    # The partner rehearses the decision itself.
    own = client.post(
        f"/api/v1/sandbox/orders/{placed['id']}/review",
        json={"decision": "approve"},
        headers=test_headers,
    )
    assert own.status_code == 200, own.text
    assert_delivered(own.json())
    assert held(client, test_headers) == "0.00"
    assert available_codes(db) == 20
    with db.read_session() as session:
        assert session.scalar(select(func.count()).select_from(Order)) == 1
    assert_consistent(db)
