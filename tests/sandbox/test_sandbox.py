"""The sandbox as a partner rehearses with it: cs_test_ keys, test funds, synthetic codes that
take no live stock, the magic client_order_id values and the rehearsal endpoints."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from standardwebhooks.webhooks import Webhook
from typer.testing import Result

from codeshelf.kit.clock import utcnow
from codeshelf.kit.db import Database
from codeshelf.kit.vault import Vault
from codeshelf.orders.service import fulfilment
from codeshelf.partners import service as partners
from codeshelf.partners.models import KeyMode, Partner
from codeshelf.webhooks import delivery
from tests.fixtures import factories
from tests.fixtures.claims import issue_operator_key
from tests.fixtures.factories import PartnerHandle, Shop, run_cli
from tests.fixtures.http import assert_problem, balance, order, second_while_first_is_open
from tests.fixtures.receiver import Receiver
from tests.fixtures.sandbox import (
    assert_books_balance,
    event_types,
    events_of,
    get_json,
    held,
    issue_sandbox_key,
    live_stock,
    top_up,
)

TEST_CODE = re.compile(r"TEST-[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}")


def ok(result: Result) -> Any:
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return json.loads(result.stdout)


@pytest.fixture
def sandbox(db: Database, shop: Shop) -> PartnerHandle:
    """A cs_test_ key for partner A's sandbox."""
    return issue_sandbox_key(db, shop.a.id)


# ---------------------------------------------------------------------------------------------
# Issuing keys


def test_the_cli_issues_sandbox_keys_for_one_twin_lists_and_revokes_them(
    database_url: str, client: httpx.Client, db: Database, shop: Shop
) -> None:
    first = ok(run_cli(database_url, "partner", "key", "create", shop.a.id, "--sandbox", "--json"))
    assert first["mode"] == "test" and first["partner_id"] == shop.a.id
    assert first["api_key"].startswith("cs_test_")
    human = run_cli(database_url, "partner", "key", "create", shop.a.id, "--sandbox")
    assert human.exit_code == 0, human.stderr
    [second_key] = re.findall(r"cs_test_[A-Za-z0-9_-]+", human.stdout)
    first_headers = {"Authorization": f"Bearer {first['api_key']}"}
    second_headers = {"Authorization": f"Bearer {second_key}"}

    # Both keys reach the same sandbox: money added with one is seen with the other.
    top_up(client, first_headers, "25.00")
    assert balance(client, second_headers) == "25.00"
    with db.read_session() as session:
        live = session.scalar(select(Partner.id).where(Partner.public_id == shop.a.id))
        twins = session.scalar(
            select(func.count()).select_from(Partner).where(Partner.sandbox_of_id == live)
        )
    assert twins == 1
    assert balance(client, shop.a.headers) == "1000.00"

    keys = ok(run_cli(database_url, "partner", "key", "list", shop.a.id, "--json"))
    modes = {k["key_id"]: (k["mode"], k["prefix"][:8], k["revoked_at"]) for k in keys}
    assert modes[shop.a.key_id] == ("live", "cs_live_", None)
    assert modes[first["key_id"]] == ("test", "cs_test_", None)
    assert sorted(mode for mode, _, _ in modes.values()) == ["live", "test", "test"]
    table = run_cli(database_url, "partner", "key", "list", shop.a.id)
    assert "live" in table.stdout and "test" in table.stdout and "cs_test_" in table.stdout

    [second_id] = [k for k in modes if k not in (shop.a.key_id, first["key_id"])]
    # Another partner cannot revoke A's sandbox key.
    other = run_cli(database_url, "partner", "key", "revoke", shop.b.id, second_id, "--json")
    assert other.exit_code != 0 and second_id in other.stderr

    revoked = run_cli(
        database_url, "partner", "key", "revoke", shop.a.id, first["key_id"], "--json"
    )
    assert ok(revoked)["revoked_at"] is not None
    assert_problem(client.get("/api/v1/balance", headers=first_headers), 401, "unauthorized")
    assert balance(client, second_headers) == "25.00"
    assert balance(client, shop.a.headers) == "1000.00"
    after = ok(run_cli(database_url, "partner", "key", "list", shop.a.id, "--json"))
    assert {k["key_id"] for k in after if k["revoked_at"] is not None} == {first["key_id"]}


def test_a_sandbox_partner_gets_no_keys_of_its_own(
    database_url: str, db: Database, shop: Shop, sandbox: PartnerHandle
) -> None:
    for args in (("--sandbox",), ()):
        result = run_cli(database_url, "partner", "key", "create", sandbox.id, *args, "--json")
        assert result.exit_code != 0
        assert "sandbox" in result.stderr and result.stdout == ""


@pytest.mark.live  # concurrent transactions: real commits
def test_two_first_sandbox_keys_issued_at_once_share_one_twin(db: Database, shop: Shop) -> None:
    first: list[str] = []

    def issue_first(session: Session) -> None:
        first.append(partners.create_key(session, shop.a.id, KeyMode.TEST).partner.public_id)

    second = second_while_first_is_open(db, issue_first, lambda: issue_sandbox_key(db, shop.a.id))
    assert second.id == first[0]
    with db.read_session() as session:
        keys = partners.list_keys(session, shop.a.id)
    assert sorted(k.mode for k in keys) == ["live", "test", "test"]


# ---------------------------------------------------------------------------------------------
# Catalog and funds


def test_the_sandbox_mirrors_the_live_catalog_and_the_partners_own_prices(
    database_url: str, client: httpx.Client, db: Database, shop: Shop, sandbox: PartnerHandle
) -> None:
    factories.add_product(db, "psn-gb-20", region="GB", face="20", currency="GBP", price="18.40")
    ok(run_cli(database_url, "price", "set", shop.a.id, "psn-us-50", "44.00", "--json"))
    ok(run_cli(database_url, "price", "set", shop.b.id, "psn-us-50", "45.00", "--json"))

    live = get_json(client, "/api/v1/inventory", shop.a.headers)["data"]
    test = get_json(client, "/api/v1/inventory", sandbox.headers)["data"]
    assert [p["product_id"] for p in test] == [p["product_id"] for p in live]
    assert [p["price"] for p in test] == [p["price"] for p in live]
    by_sku = {p["product_id"]: p for p in test}
    assert by_sku["psn-us-50"]["price"] == {"amount": "44.00", "currency": "USD"}
    assert by_sku["psn-gb-20"]["price"] == {"amount": "18.40", "currency": "GBP"}
    # psn-gb-20 has no live stock at all; the sandbox has plenty of everything.
    assert {p["quantity_available"] for p in test} == {10_000}
    assert all(p["available"] for p in test)
    assert {p["product_id"]: p["quantity_available"] for p in live} == {
        "psn-gb-20": 0,
        "psn-us-50": 20,
    }

    top_up(client, sandbox.headers, "100.00")
    placed = order(client, sandbox.headers, {"product_id": "psn-us-50", "quantity": 2})
    assert placed.status_code == 201, placed.text
    assert placed.json()["items"][0]["unit_price"] == {"amount": "44.00", "currency": "USD"}
    assert placed.json()["total"] == {"amount": "88.00", "currency": "USD"}
    # A price change on the live partner shows in its sandbox at once.
    ok(run_cli(database_url, "price", "set", shop.a.id, "psn-us-50", "43.10", "--json"))
    test = get_json(client, "/api/v1/inventory", sandbox.headers)["data"]
    assert {p["product_id"]: p["price"]["amount"] for p in test}["psn-us-50"] == "43.10"


def test_test_funds_start_at_zero_and_top_ups_add_to_them(
    client: httpx.Client, db: Database, shop: Shop, sandbox: PartnerHandle
) -> None:
    start = get_json(client, "/api/v1/balance", sandbox.headers)
    assert start["data"] in ([], [{"amount": "0.00", "currency": "USD"}])
    assert start["held"] in ([], [{"amount": "0.00", "currency": "USD"}])
    assert get_json(client, "/api/v1/ledger", sandbox.headers)["data"] == []

    first = top_up(client, sandbox.headers, "250.00")
    assert first["balance"] == {"amount": "250.00", "currency": "USD"}
    assert first["transaction_id"].startswith("txn_")
    second = top_up(client, sandbox.headers, "1000000")
    assert second["balance"] == {"amount": "1000250.00", "currency": "USD"}
    assert balance(client, sandbox.headers) == "1000250.00"
    ledger = get_json(client, "/api/v1/ledger", sandbox.headers)["data"]
    assert [(e["id"], e["type"], e["amount"]["amount"]) for e in ledger] == [
        (first["transaction_id"], "deposit", "250.00"),
        (second["transaction_id"], "deposit", "1000000.00"),
    ]
    assert ledger[-1]["balance_after"]["amount"] == "1000250.00"
    euros = client.post(
        "/api/v1/sandbox/deposits",
        json={"amount": "10", "currency": "eur"},
        headers=sandbox.headers,
    )
    assert euros.status_code == 201, euros.text
    assert euros.json()["balance"] == {"amount": "10.00", "currency": "EUR"}

    refused: list[dict[str, Any]] = [
        {"amount": "0", "currency": "USD"},
        {"amount": "0.00", "currency": "USD"},
        {"amount": "-5.00", "currency": "USD"},
        {"amount": "abc", "currency": "USD"},
        {"amount": "1.001", "currency": "USD"},
        {"amount": "1.5", "currency": "JPY"},
        {"amount": "5.00", "currency": "ZZZ"},
        {"amount": "5.00", "currency": "US"},
        {"amount": 5, "currency": "USD"},
        {"amount": "5.00"},
        {"amount": "5.00", "currency": "USD", "partner_id": shop.b.id},
        # Absurd amounts: more than a million at once.
        {"amount": "1000000.01", "currency": "USD"},
        {"amount": "999999999999", "currency": "USD"},
        {"amount": "1e9", "currency": "USD"},
    ]
    for body in refused:
        response = client.post("/api/v1/sandbox/deposits", json=body, headers=sandbox.headers)
        assert_problem(response, 422, "validation-error")
    assert balance(client, sandbox.headers) == "1000250.00"
    assert len(get_json(client, "/api/v1/ledger", sandbox.headers)["data"]) == 3
    # None of it is live money.
    assert balance(client, shop.a.headers) == "1000.00"
    assert balance(client, shop.b.headers) == "1000.00"
    assert_books_balance(db)


# ---------------------------------------------------------------------------------------------
# Orders


def test_a_sandbox_order_delivers_stable_test_codes_and_takes_no_live_stock(
    client: httpx.Client, db: Database, shop: Shop, sandbox: PartnerHandle
) -> None:
    before = live_stock(db)
    live_inventory = get_json(client, "/api/v1/inventory", shop.a.headers)
    top_up(client, sandbox.headers, "2000.00")

    placed = order(client, sandbox.headers, {"product_id": "psn-us-50", "quantity": 3})
    assert placed.status_code == 201, placed.text
    body = placed.json()
    assert body["status"] == "delivered" and body["waiting_for"] is None
    assert body["total"] == {"amount": "139.50", "currency": "USD"}
    assert balance(client, sandbox.headers) == "1860.50"
    codes = client.get(body["codes_url"], headers=sandbox.headers)
    assert codes.status_code == 200, codes.text
    assert codes.headers["cache-control"] == "no-store"
    delivered = [row["code"] for row in codes.json()["codes"]]
    assert codes.json()["count"] == 3 and len(set(delivered)) == 3
    assert all(TEST_CODE.fullmatch(code) for code in delivered), delivered
    assert {row["product_id"] for row in codes.json()["codes"]} == {"psn-us-50"}
    assert not set(delivered) & set(shop.codes)
    again = client.get(body["codes_url"], headers=sandbox.headers).json()["codes"]
    assert [row["code"] for row in again] == delivered

    # More than the live stock (20 codes) is no problem for the sandbox.
    big = order(client, sandbox.headers, {"product_id": "psn-us-50", "quantity": 30})
    assert big.status_code == 201, big.text
    assert big.json()["status"] == "delivered"
    big_codes = get_json(client, big.json()["codes_url"], sandbox.headers)["codes"]
    assert len({row["code"] for row in big_codes} | set(delivered)) == 33

    assert live_stock(db) == before
    assert get_json(client, "/api/v1/inventory", shop.a.headers) == live_inventory
    assert balance(client, shop.a.headers) == "1000.00"
    assert get_json(client, "/api/v1/orders", shop.a.headers)["data"] == []
    assert (
        event_types(client, sandbox.headers)
        == [
            "order.created",
            "order.paid",
            "order.fulfilled",
        ]
        * 2
    )
    assert_books_balance(db)


def test_a_sandbox_order_is_refused_for_want_of_test_funds(
    client: httpx.Client, db: Database, shop: Shop, sandbox: PartnerHandle
) -> None:
    assert_problem(order(client, sandbox.headers), 402, "insufficient-funds")
    top_up(client, sandbox.headers, "50.00")
    two = {"product_id": "psn-us-50", "quantity": 2}
    assert_problem(order(client, sandbox.headers, two), 402, "insufficient-funds")
    assert_problem(
        order(client, sandbox.headers, {**two, "client_order_id": "test_backorder-1"}),
        402,
        "insufficient-funds",
    )
    assert get_json(client, "/api/v1/orders", sandbox.headers)["data"] == []
    assert balance(client, sandbox.headers) == "50.00"
    assert_books_balance(db)


# ---------------------------------------------------------------------------------------------
# Magic values


def test_test_fail_fails_the_order_at_once_and_charges_nothing(
    client: httpx.Client, db: Database, shop: Shop, sandbox: PartnerHandle
) -> None:
    top_up(client, sandbox.headers, "100.00")
    placed = order(
        client,
        sandbox.headers,
        {"product_id": "psn-us-50", "quantity": 1, "client_order_id": "test_fail_42"},
    )
    assert placed.status_code == 201, placed.text
    body = placed.json()
    assert body["status"] == "failed"
    assert body["failure_reason"] == "sandbox_forced_failure"
    assert body["delivered_at"] is None and body["waiting_for"] is None
    assert get_json(client, f"/api/v1/orders/{body['id']}", sandbox.headers) == body
    assert_problem(client.get(body["codes_url"], headers=sandbox.headers), 409, "codes-not-ready")
    assert balance(client, sandbox.headers) == "100.00"
    assert held(client, sandbox.headers) == "0.00"
    assert [e["type"] for e in get_json(client, "/api/v1/ledger", sandbox.headers)["data"]] == [
        "deposit"
    ]
    assert events_of(client, sandbox.headers, body["id"]) == ["order.created", "order.failed"]
    failed = get_json(client, "/api/v1/events", sandbox.headers)["data"][-1]["payload"]
    assert failed["failure_reason"] == "sandbox_forced_failure"
    assert failed["client_order_id"] == "test_fail_42"
    # It fails even without any test funds.
    broke = issue_sandbox_key(db, shop.b.id)
    also = order(
        client,
        broke.headers,
        {"product_id": "psn-us-50", "quantity": 1, "client_order_id": "test_fail"},
    )
    assert also.status_code == 201 and also.json()["status"] == "failed"
    assert_books_balance(db)


def test_test_backorder_waits_with_its_money_held_until_the_sandbox_restocks(
    client: httpx.Client, db: Database, shop: Shop, sandbox: PartnerHandle
) -> None:
    before = live_stock(db)
    top_up(client, sandbox.headers, "200.00")
    placed = order(
        client,
        sandbox.headers,
        {"product_id": "psn-us-50", "quantity": 2, "client_order_id": "test_backorder-7"},
    )
    assert placed.status_code == 201, placed.text
    body = placed.json()
    assert body["status"] == "pending" and body["waiting_for"] == "stock"
    assert body["backorder_until"] is not None and body["review_required"] is False
    assert balance(client, sandbox.headers) == "107.00"
    assert held(client, sandbox.headers) == "93.00"
    assert_problem(client.get(body["codes_url"], headers=sandbox.headers), 409, "codes-not-ready")
    assert events_of(client, sandbox.headers, body["id"]) == ["order.created"]
    assert live_stock(db) == before  # no live stock is promised to it
    assert_books_balance(db)

    restocked = client.post("/api/v1/sandbox/restock", headers=sandbox.headers)
    assert restocked.status_code == 200, restocked.text
    assert restocked.json() == {"delivered_order_ids": [body["id"]]}
    after = get_json(client, f"/api/v1/orders/{body['id']}", sandbox.headers)
    assert after["status"] == "delivered" and after["waiting_for"] is None
    assert after["delivered_at"] is not None
    codes = get_json(client, body["codes_url"], sandbox.headers)["codes"]
    assert len(codes) == 2 and all(TEST_CODE.fullmatch(row["code"]) for row in codes)
    assert balance(client, sandbox.headers) == "107.00"
    assert held(client, sandbox.headers) == "0.00"
    assert events_of(client, sandbox.headers, body["id"]) == [
        "order.created",
        "order.paid",
        "order.fulfilled",
    ]
    # Nothing is left waiting; restocking again delivers nothing more.
    again = client.post("/api/v1/sandbox/restock", headers=sandbox.headers)
    assert again.json() == {"delivered_order_ids": []}
    assert live_stock(db) == before
    assert_books_balance(db)


def test_the_worker_never_fills_a_sandbox_backorder_but_expires_it_at_its_deadline(
    client: httpx.Client, db: Database, shop: Shop, sandbox: PartnerHandle
) -> None:
    top_up(client, sandbox.headers, "100.00")
    waiting = order(
        client,
        sandbox.headers,
        {"product_id": "psn-us-50", "quantity": 1, "client_order_id": "test_backorder"},
    ).json()
    deadline = datetime.fromisoformat(waiting["backorder_until"])
    with db.session() as session:
        assert fulfilment.tick(session, utcnow()) == ([], [])
    assert get_json(client, f"/api/v1/orders/{waiting['id']}", sandbox.headers)["status"] == (
        "pending"
    )
    with db.session() as session:
        assert fulfilment.tick(session, deadline + timedelta(seconds=1)) == ([waiting["id"]], [])
    expired = get_json(client, f"/api/v1/orders/{waiting['id']}", sandbox.headers)
    assert expired["status"] == "failed"
    assert expired["failure_reason"] == "backorder_expired"
    assert balance(client, sandbox.headers) == "100.00"
    assert held(client, sandbox.headers) == "0.00"
    assert events_of(client, sandbox.headers, waiting["id"]) == ["order.created", "order.failed"]
    restocked = client.post("/api/v1/sandbox/restock", headers=sandbox.headers)
    assert restocked.json() == {"delivered_order_ids": []}
    assert_books_balance(db)


def test_test_review_waits_for_the_partners_own_decision(
    client: httpx.Client, db: Database, shop: Shop, sandbox: PartnerHandle
) -> None:
    top_up(client, sandbox.headers, "500.00")
    approved = order(
        client,
        sandbox.headers,
        {"product_id": "psn-us-50", "quantity": 2, "client_order_id": "test_review_ok"},
    ).json()
    rejected = order(
        client,
        sandbox.headers,
        {"product_id": "psn-us-50", "quantity": 1, "client_order_id": "test_review_no"},
    ).json()
    for body in (approved, rejected):
        assert body["status"] == "pending" and body["waiting_for"] == "review"
        assert body["review_required"] is True
        assert events_of(client, sandbox.headers, body["id"]) == [
            "order.created",
            "order.review_required",
        ]
    assert balance(client, sandbox.headers) == "360.50"
    assert held(client, sandbox.headers) == "139.50"
    assert_books_balance(db)

    # The operator never sees sandbox orders, and cannot decide them.
    operator = issue_operator_key(db)
    queue = get_json(client, "/api/v1/admin/orders/review", operator.headers)["data"]
    assert queue == []
    assert_problem(
        client.post(
            f"/api/v1/admin/orders/{approved['id']}/review",
            json={"decision": "approve", "reason": "looks fine"},
            headers=operator.headers,
        ),
        404,
        "order-not-found",
    )

    url = "/api/v1/sandbox/orders/{}/review"
    yes = client.post(
        url.format(approved["id"]), json={"decision": "approve"}, headers=sandbox.headers
    )
    assert yes.status_code == 200, yes.text
    assert yes.json()["status"] == "delivered" and yes.json()["waiting_for"] is None
    codes = get_json(client, approved["codes_url"], sandbox.headers)["codes"]
    assert len(codes) == 2 and all(TEST_CODE.fullmatch(row["code"]) for row in codes)
    assert events_of(client, sandbox.headers, approved["id"]) == [
        "order.created",
        "order.review_required",
        "order.paid",
        "order.fulfilled",
    ]

    no = client.post(
        url.format(rejected["id"]), json={"decision": "reject"}, headers=sandbox.headers
    )
    assert no.status_code == 200, no.text
    assert no.json()["status"] == "failed"
    assert no.json()["failure_reason"] == "review_rejected"
    assert events_of(client, sandbox.headers, rejected["id"])[-1] == "order.failed"
    assert balance(client, sandbox.headers) == "407.00"  # only the approved order was paid
    assert held(client, sandbox.headers) == "0.00"
    assert [e["type"] for e in get_json(client, "/api/v1/ledger", sandbox.headers)["data"]] == [
        "deposit",
        "hold",
        "hold",
        "release",
    ]

    # A decided order, an order never held, a malformed decision, an unknown order.
    for decided in (approved, rejected):
        assert_problem(
            client.post(
                url.format(decided["id"]), json={"decision": "approve"}, headers=sandbox.headers
            ),
            409,
            "order-not-under-review",
        )
    plain = order(client, sandbox.headers).json()
    assert_problem(
        client.post(url.format(plain["id"]), json={"decision": "reject"}, headers=sandbox.headers),
        409,
        "order-not-under-review",
    )
    for decision in ({"decision": "maybe"}, {}, {"decision": "approve", "reason": "x"}):
        response = client.post(url.format(plain["id"]), json=decision, headers=sandbox.headers)
        assert_problem(response, 422, "validation-error")
    for missing in ("ord_00000000000000000000", "nope"):
        assert_problem(
            client.post(url.format(missing), json={"decision": "approve"}, headers=sandbox.headers),
            404,
            "order-not-found",
        )
    assert_books_balance(db)


def test_magic_values_are_ordinary_client_order_ids_on_live_keys(
    client: httpx.Client, db: Database, shop: Shop
) -> None:
    for magic in ("test_fail", "test_backorder-1", "test_review-1"):
        placed = order(
            client,
            shop.a.headers,
            {"product_id": "psn-us-50", "quantity": 1, "client_order_id": magic},
        )
        assert placed.status_code == 201, placed.text
        assert placed.json()["status"] == "delivered", magic
        assert placed.json()["failure_reason"] is None
    assert balance(client, shop.a.headers) == "860.50"
    assert_books_balance(db)


def test_low_balance_alerts_of_each_world_fire_on_their_own_wallet_only(
    client: httpx.Client, db: Database, shop: Shop, sandbox: PartnerHandle
) -> None:
    for who, below in ((shop.a, "990.00"), (sandbox, "100.00")):
        response = client.put(
            "/api/v1/balance/alerts/USD", json={"below": below}, headers=who.headers
        )
        assert response.status_code == 200, response.text
    assert get_json(client, "/api/v1/balance/alerts", sandbox.headers)["data"] == [
        {"amount": "100.00", "currency": "USD"}
    ]
    assert get_json(client, "/api/v1/balance/alerts", shop.a.headers)["data"] == [
        {"amount": "990.00", "currency": "USD"}
    ]
    top_up(client, sandbox.headers, "120.00")
    assert order(client, sandbox.headers).status_code == 201  # 120.00 -> 73.50
    feed = get_json(client, "/api/v1/events", sandbox.headers)["data"]
    [low] = [e["payload"] for e in feed if e["type"] == "balance.low"]
    assert low["balance"] == {"amount": "73.50", "currency": "USD"}
    assert low["alert_below"] == {"amount": "100.00", "currency": "USD"}
    assert event_types(client, shop.a.headers) == []
    assert order(client, shop.a.headers).status_code == 201  # 1000.00 -> 953.50
    assert event_types(client, shop.a.headers).count("balance.low") == 1
    assert event_types(client, sandbox.headers).count("balance.low") == 1
    assert_books_balance(db)


def test_a_price_set_on_the_sandbox_partner_is_refused(
    database_url: str, client: httpx.Client, shop: Shop, sandbox: PartnerHandle
) -> None:
    result = run_cli(database_url, "price", "set", sandbox.id, "psn-us-50", "10.00", "--json")
    assert result.exit_code != 0
    assert "sandbox" in result.stderr and result.stdout == ""
    test = get_json(client, "/api/v1/inventory", sandbox.headers)["data"]
    assert test[0]["price"] == {"amount": "46.50", "currency": "USD"}


# ---------------------------------------------------------------------------------------------
# Webhooks


def test_a_triggered_sample_event_reaches_the_sandbox_endpoint_only(
    hook_client: httpx.Client, db: Database, vault: Vault, shop: Shop
) -> None:
    sandbox = issue_sandbox_key(db, shop.a.id)
    with Receiver() as test_receiver, Receiver() as live_receiver:
        registered = hook_client.post(
            "/api/v1/webhook-endpoints",
            json={"url": test_receiver.url, "event_types": ["balance.low", "order.failed"]},
            headers=sandbox.headers,
        )
        assert registered.status_code == 201, registered.text
        secret = registered.json()["secret"]
        live = hook_client.post(
            "/api/v1/webhook-endpoints", json={"url": live_receiver.url}, headers=shop.a.headers
        )
        assert live.status_code == 201, live.text

        triggered = hook_client.post(
            "/api/v1/sandbox/webhooks/trigger",
            json={"event": "balance.low"},
            headers=sandbox.headers,
        )
        assert triggered.status_code == 202, triggered.text
        event_id = triggered.json()["event_id"]
        assert event_id.startswith("evt_")
        with httpx.Client() as sender:
            assert delivery.run_once(db, vault, sender, allow_private=True) == 1
        [received] = test_receiver.received
        payload = Webhook(secret).verify(received.body, received.headers)
        assert received.headers["webhook-id"] == event_id
        assert payload["event"] == "balance.low" and payload["sample"] is True
        assert payload["balance"]["currency"] == "USD"
        assert live_receiver.received == []

        # Every event type can be sampled; only the subscribed ones are sent.
        for event in ("order.fulfilled", "order.failed", "claim.updated", "order.review_required"):
            sample = hook_client.post(
                "/api/v1/sandbox/webhooks/trigger", json={"event": event}, headers=sandbox.headers
            )
            assert sample.status_code == 202, sample.text
        with httpx.Client() as sender:
            assert delivery.run_once(db, vault, sender, allow_private=True) == 1
        assert [json.loads(r.body)["event"] for r in test_receiver.received] == [
            "balance.low",
            "order.failed",
        ]
        assert live_receiver.received == []

        for bad in (
            {"event": "order.exploded"},
            {"event": ""},
            {},
            {"event": "balance.low", "x": 1},
        ):
            response = hook_client.post(
                "/api/v1/sandbox/webhooks/trigger", json=bad, headers=sandbox.headers
            )
            assert_problem(response, 422, "validation-error")

        feed = get_json(hook_client, "/api/v1/events", sandbox.headers)["data"]
        assert [e["type"] for e in feed] == [
            "balance.low",
            "order.fulfilled",
            "order.failed",
            "claim.updated",
            "order.review_required",
        ]
        assert feed[0]["id"] == event_id
        assert get_json(hook_client, "/api/v1/events", shop.a.headers)["data"] == []

        # A live order reaches the live endpoint, never the sandbox's.
        assert order(hook_client, shop.a.headers).status_code == 201
        with httpx.Client() as sender:
            assert delivery.run_once(db, vault, sender, allow_private=True) == 3
        assert len(live_receiver.received) == 3
        assert len(test_receiver.received) == 2


def test_a_sandbox_order_announces_itself_to_the_sandbox_endpoint(
    hook_client: httpx.Client, db: Database, vault: Vault, shop: Shop
) -> None:
    sandbox = issue_sandbox_key(db, shop.a.id)
    with Receiver() as receiver:
        registered = hook_client.post(
            "/api/v1/webhook-endpoints", json={"url": receiver.url}, headers=sandbox.headers
        )
        assert registered.status_code == 201, registered.text
        top_up(hook_client, sandbox.headers, "100.00")
        failed = order(
            hook_client,
            sandbox.headers,
            {"product_id": "psn-us-50", "quantity": 1, "client_order_id": "test_fail_hook"},
        ).json()
        with httpx.Client() as sender:
            assert delivery.run_once(db, vault, sender, allow_private=True) == 2
        payloads = [
            Webhook(registered.json()["secret"]).verify(r.body, r.headers)
            for r in receiver.received
        ]
    assert [p["event"] for p in payloads] == ["order.created", "order.failed"]
    assert {p["order_id"] for p in payloads} == {failed["id"]}
    assert payloads[1]["failure_reason"] == "sandbox_forced_failure"
