"""A product's default price and its retirement, through the CLI and the operator API: orders
already placed keep their price, partner prices still win; a retired product leaves the
inventory and is refused to new orders and backorders while its past stays readable."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from codeshelf.catalog import service as catalog
from codeshelf.catalog.models import Product
from codeshelf.invariants import check_all
from codeshelf.kit.clock import utcnow
from codeshelf.kit.db import Database
from codeshelf.kit.vault import Vault
from codeshelf.orders import service as orders
from codeshelf.partners import service as partners
from tests.fixtures import factories
from tests.fixtures.backorders import backorder
from tests.fixtures.claims import (
    audit_events,
    claim_body,
    file_claim,
    issue_operator_key,
    place,
    reveal,
)
from tests.fixtures.http import assert_problem, order

ADMIN = "/api/v1/admin/products"
HOUR = timedelta(hours=1)


def cli(database_url: str, *args: str) -> Any:
    result = factories.run_cli(database_url, *args, "--json")
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return json.loads(result.stdout)


def refused(database_url: str, *args: str, message: str) -> None:
    result = factories.run_cli(database_url, *args)
    assert result.exit_code == 1, result.stdout
    assert message in result.stderr, result.stderr


def unit_price(response: httpx.Response) -> str:
    assert response.status_code in (200, 201), response.text
    [item] = response.json()["items"]
    amount: str = item["unit_price"]["amount"]
    return amount


def stored_price(db: Database, sku: str = "psn-us-50") -> int:
    with db.read_session() as session:
        return int(session.scalar(select(Product.price_minor).where(Product.sku == sku)) or 0)


def inventory_skus(client: httpx.Client, headers: dict[str, str]) -> list[str]:
    response = client.get("/api/v1/inventory", headers=headers)
    assert response.status_code == 200, response.text
    return [row["product_id"] for row in response.json()["data"]]


# ---------------------------------------------------------------------------------------------
# The default price


def test_a_new_default_price_applies_to_new_orders_only_and_partner_prices_still_win(
    client: httpx.Client, db: Database, shop: factories.Shop, database_url: str
) -> None:
    cli(database_url, "price", "set", shop.b.id, shop.sku, "45.00")
    first = order(client, shop.a.headers)
    assert unit_price(first) == "46.50"

    changed = cli(database_url, "product", "price", shop.sku, "47.25")

    assert changed == {
        "sku": shop.sku,
        "previous": {"amount": "46.50", "currency": "USD"},
        "price": {"amount": "47.25", "currency": "USD"},
    }
    assert unit_price(order(client, shop.a.headers)) == "47.25"
    assert unit_price(order(client, shop.b.headers)) == "45.00"  # its own price still wins
    again = client.get(f"/api/v1/orders/{first.json()['id']}", headers=shop.a.headers)
    assert unit_price(again) == "46.50"
    assert first.json()["total"] == again.json()["total"]
    [audited] = audit_events(db, shop.sku, "product.price")
    assert audited.actor == "operator:cli"
    assert audited.details == {"previous": "46.50", "price": "47.25", "currency": "USD"}
    with db.read_session() as session:
        assert check_all(session) == []


def test_the_same_price_again_changes_and_records_nothing(
    db: Database, shop: factories.Shop, database_url: str
) -> None:
    result = factories.run_cli(database_url, "product", "price", shop.sku, "46.5")
    assert result.exit_code == 0 and "already costs 46.50 USD" in result.stdout
    assert audit_events(db, shop.sku, "product.price") == []


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("0", "positive"),
        ("-1.00", "positive"),
        ("46.505", "decimal places"),
        ("forty", "not a decimal"),
        ("NaN", "finite"),
        ("1e30", "largest amount"),
    ],
)
def test_invalid_prices_are_refused_and_change_nothing(
    db: Database, shop: factories.Shop, database_url: str, amount: str, message: str
) -> None:
    refused(database_url, "product", "price", shop.sku, "--", amount, message=message)
    assert stored_price(db) == 4650
    assert audit_events(db, shop.sku, "product.price") == []


def test_the_price_of_an_unknown_product_is_refused(database_url: str, db: Database) -> None:
    refused(database_url, "product", "price", "psn-xx-1", "10.00", message="no product psn-xx-1")


def test_the_operator_api_changes_a_price_and_names_the_key_in_the_log(
    client: httpx.Client, db: Database, shop: factories.Shop
) -> None:
    alice = issue_operator_key(db, "alice")

    response = client.post(f"{ADMIN}/{shop.sku}/price", json={"price": "48"}, headers=alice.headers)

    assert response.status_code == 200, response.text
    assert response.json() == {
        "product_id": shop.sku,
        "previous": {"amount": "46.50", "currency": "USD"},
        "price": {"amount": "48.00", "currency": "USD"},
        "changed": True,
    }
    [audited] = audit_events(db, shop.sku, "product.price")
    assert audited.actor == "operator:alice"
    listed = client.get(ADMIN, headers=alice.headers).json()["data"]
    assert [(p["product_id"], p["price"]["amount"], p["retired_at"]) for p in listed] == [
        (shop.sku, "48.00", None)
    ]
    for body, status, slug in [
        ({"price": "0"}, 422, "validation-error"),
        ({"price": 48}, 422, "validation-error"),  # a number, not a decimal string
        ({"price": "48", "currency": "EUR"}, 422, "validation-error"),
    ]:
        assert_problem(
            client.post(f"{ADMIN}/{shop.sku}/price", json=body, headers=alice.headers),
            status,
            slug,
        )
    missing = client.post(f"{ADMIN}/psn-xx-1/price", json={"price": "1"}, headers=alice.headers)
    assert_problem(missing, 404, "product-not-found")
    # A partner key finds nothing there.
    partner = client.post(f"{ADMIN}/{shop.sku}/price", json={"price": "1"}, headers=shop.a.headers)
    assert_problem(partner, 404, "not-found")
    assert stored_price(db) == 4800


# ---------------------------------------------------------------------------------------------
# Retiring


def test_a_retired_product_leaves_the_inventory_and_new_orders_are_refused(
    client: httpx.Client, db: Database, shop: factories.Shop, database_url: str
) -> None:
    factories.add_product(db, "psn-us-10", face="10", price="9.30")
    sold = order(client, shop.a.headers, {"product_id": shop.sku, "quantity": 2})
    assert sold.status_code == 201, sold.text

    retired = cli(database_url, "product", "retire", shop.sku)

    assert retired["sku"] == shop.sku and retired["retired_at"] is not None
    assert inventory_skus(client, shop.a.headers) == ["psn-us-10"]
    for body in [
        {"product_id": shop.sku, "quantity": 1},
        {"product_id": shop.sku, "quantity": 1, "allow_backorder": True},
        {"items": [{"region": "US", "denomination": "50", "currency": "USD", "quantity": 1}]},
        {
            "items": [
                {"product_id": "psn-us-10", "quantity": 1},
                {"product_id": shop.sku, "quantity": 1},
            ]
        },
    ]:
        problem = assert_problem(order(client, shop.a.headers, body), 422, "product-retired")
        assert shop.sku in problem["detail"]
        assert problem["errors"][0]["pointer"].startswith("#/")
    # The sandbox mirrors the live catalog: retired there too.
    with db.session() as session:
        assert [p.sku for p in catalog.list_products(session, include_retired=False)] == [
            "psn-us-10"
        ]
    [audited] = audit_events(db, shop.sku, "product.retire")
    assert audited.actor == "operator:cli"
    listed = factories.run_cli(database_url, "product", "list")
    assert f"{utcnow():%Y-%m-%d}" in listed.stdout


def test_a_retired_products_past_orders_codes_and_claims_stay_readable(
    client: httpx.Client, db: Database, shop: factories.Shop, database_url: str
) -> None:
    order_id, codes = place(client, shop.a.headers, quantity=2)

    cli(database_url, "product", "retire", shop.sku)

    shown = client.get(f"/api/v1/orders/{order_id}", headers=shop.a.headers)
    assert shown.status_code == 200 and shown.json()["items"][0]["product_id"] == shop.sku
    assert reveal(client, shop.a.headers, order_id) == codes
    listed = client.get("/api/v1/orders", headers=shop.a.headers).json()["data"]
    assert [o["id"] for o in listed] == [order_id]
    ledger = client.get("/api/v1/ledger", headers=shop.a.headers).json()["data"]
    assert order_id in [entry["order_id"] for entry in ledger]
    # A code of it can still be claimed: the claim is about what was sold.
    claim_id = file_claim(client, shop.a.headers, claim_body(order_id, codes[0]))
    claim = client.get(f"/api/v1/claims/{claim_id}", headers=shop.a.headers)
    assert claim.status_code == 200
    alice = issue_operator_key(db)
    shown_claim = client.get(f"/api/v1/admin/claims/{claim_id}", headers=alice.headers).json()
    assert shown_claim["history"][0]["sku"] == shop.sku
    with db.read_session() as session:
        assert check_all(session) == []


def test_a_product_is_not_retired_while_backorders_wait_for_it(
    client: httpx.Client, db: Database, shop: factories.Shop, database_url: str, vault: Vault
) -> None:
    factories.deposit(db, shop.a.id, "5000.00")
    waiting = backorder(client, shop.a.headers, 25, sku=shop.sku)  # 20 in stock
    assert waiting.status_code == 201 and waiting.json()["status"] == "pending"

    refused(database_url, "product", "retire", shop.sku, message="promised to waiting backorders")
    alice = issue_operator_key(db)
    problem = client.post(f"{ADMIN}/{shop.sku}/retire", headers=alice.headers)
    assert assert_problem(problem, 409, "product-has-backorders")["backordered"] == 25
    assert shop.sku in inventory_skus(client, shop.b.headers)

    factories.load_codes(db, vault, shop.sku, 5)
    assert factories.run_cli(database_url, "worker", "--once").exit_code == 0
    filled = client.get(f"/api/v1/orders/{waiting.json()['id']}", headers=shop.a.headers)
    assert filled.json()["status"] == "delivered"
    assert cli(database_url, "product", "retire", shop.sku)["retired_at"] is not None


def test_an_order_held_for_review_is_delivered_on_approval_but_never_becomes_a_backorder(
    client: httpx.Client, db: Database, shop: factories.Shop, database_url: str
) -> None:
    factories.deposit(db, shop.a.id, "5000.00")
    cli(database_url, "partner", "limits", shop.a.id, "--quantity-over", "1")
    in_stock = order(client, shop.a.headers, {"product_id": shop.sku, "quantity": 2})
    short = backorder(client, shop.a.headers, 30, sku=shop.sku)
    for held in (in_stock, short):
        assert held.status_code == 201 and held.json()["review_required"] is True
    cli(database_url, "product", "retire", shop.sku)
    alice = issue_operator_key(db)

    def approve(order_id: str) -> dict[str, Any]:
        response = client.post(
            f"/api/v1/admin/orders/{order_id}/review",
            json={"decision": "approve", "reason": "known buyer"},
            headers=alice.headers,
        )
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()
        return data

    assert approve(in_stock.json()["id"])["status"] == "delivered"  # placed before retirement
    failed = approve(short.json()["id"])
    assert failed["status"] == "failed"
    with db.read_session() as session:
        product = session.scalar(select(Product).where(Product.sku == shop.sku))
        assert product is not None and product.backordered == 0
        assert check_all(session) == []


def test_replacements_owed_for_a_retired_product_are_still_sent_from_its_stock(
    client: httpx.Client, db: Database, vault: Vault, database_url: str
) -> None:
    shop = factories.make_shop(db, vault, stock_count=1)
    alice = issue_operator_key(db)
    order_id, [code] = place(client, shop.a.headers)
    claim_id = file_claim(client, shop.a.headers, claim_body(order_id, code))
    approved = client.post(
        f"/api/v1/admin/claims/{claim_id}/approve", json={"reason": "ok"}, headers=alice.headers
    )
    assert approved.json()["status"] == "approved"  # waiting: no stock for its replacement

    cli(database_url, "product", "retire", shop.sku)  # a claim waiting is not a backorder
    [fresh] = factories.load_codes(db, vault, shop.sku, 1)  # imported for the replacement
    assert factories.run_cli(database_url, "worker", "--once").exit_code == 0

    claim = client.get(f"/api/v1/claims/{claim_id}", headers=shop.a.headers).json()
    assert claim["status"] == "resolved"
    assert reveal(client, shop.a.headers, claim["replacement_order_ids"][0]) == [fresh]
    assert inventory_skus(client, shop.a.headers) == []


def test_retire_twice_and_unretire_an_active_product_are_refused(
    client: httpx.Client, db: Database, shop: factories.Shop, database_url: str
) -> None:
    alice = issue_operator_key(db)
    active = client.post(f"{ADMIN}/{shop.sku}/unretire", headers=alice.headers)
    assert_problem(active, 409, "product-not-retired")
    first = client.post(f"{ADMIN}/{shop.sku}/retire", headers=alice.headers)
    assert first.status_code == 200 and first.json()["retired_at"] is not None
    assert_problem(
        client.post(f"{ADMIN}/{shop.sku}/retire", headers=alice.headers),
        409,
        "product-already-retired",
    )
    refused(database_url, "product", "retire", shop.sku, message="already retired")
    assert_problem(
        client.post(f"{ADMIN}/psn-xx-1/retire", headers=alice.headers), 404, "product-not-found"
    )
    assert [e.actor for e in audit_events(db, shop.sku, "product.retire")] == ["operator:alice"]


def test_an_unretired_product_sells_again_with_the_stock_it_kept(
    client: httpx.Client, db: Database, shop: factories.Shop, database_url: str
) -> None:
    cli(database_url, "product", "retire", shop.sku)
    assert_problem(order(client, shop.a.headers), 422, "product-retired")

    unretired = cli(database_url, "product", "unretire", shop.sku)

    assert unretired["retired_at"] is None
    inventory = client.get("/api/v1/inventory", headers=shop.a.headers).json()["data"]
    assert [(row["product_id"], row["quantity_available"]) for row in inventory] == [(shop.sku, 20)]
    assert order(client, shop.a.headers).status_code == 201
    [audited] = audit_events(db, shop.sku, "product.unretire")
    assert audited.details is not None and "retired_at" in audited.details


def test_a_backorder_priced_before_a_retirement_commits_is_refused_when_it_promises_stock(
    db: Database, vault: Vault
) -> None:
    """The race, step by step: the order read the product on sale; the retirement commits;
    the order's promise of stock (the same row) then finds it retired and refuses."""
    shop = factories.make_shop(db, vault, stock_count=0)
    line = orders.ItemRequest(quantity=3, pointer="#", product_id=shop.sku)
    with db.session() as session:
        items = orders.price_items(session, partners.get_partner(session, shop.a.id), [line])
    with db.session() as session:
        catalog.retire_product(session, shop.sku, "operator:test", utcnow())

    with pytest.raises(catalog.ProductRetiredError), db.session() as session:
        partner = partners.get_partner(session, shop.a.id)
        orders.place_order(session, partner, items, None, backorder_until=utcnow() + HOUR)

    with db.read_session() as session:
        assert check_all(session) == []
        assert session.scalar(select(Product.backordered).where(Product.sku == shop.sku)) == 0
