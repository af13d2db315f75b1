"""POST /orders: all-or-nothing, synchronous delivery, both body forms, refusals."""

from __future__ import annotations

import httpx
import pytest

from codeshelf.kit.db import Database
from codeshelf.kit.vault import Vault
from tests.fixtures import factories
from tests.fixtures.factories import Shop
from tests.fixtures.http import assert_problem, available_codes, balance, order, order_count


def test_an_order_is_priced_paid_and_delivered_at_once(client: httpx.Client, shop: Shop) -> None:
    response = order(client, shop.a.headers, {"product_id": "psn-us-50", "quantity": 3})
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "delivered"
    assert body["total"] == {"amount": "139.50", "currency": "USD"}
    [item] = body["items"]
    assert item["quantity"] == 3
    assert item["unit_price"] == {"amount": "46.50", "currency": "USD"}
    assert item["denomination"] == {"amount": "50.00", "currency": "USD"}
    assert response.headers["location"] == f"/api/v1/orders/{body['id']}"
    assert balance(client, shop.a.headers) == "860.50"

    codes = client.get(body["codes_url"], headers=shop.a.headers)
    assert codes.status_code == 200
    assert codes.headers["cache-control"] == "no-store"
    delivered = [row["code"] for row in codes.json()["codes"]]
    assert len(delivered) == 3 and set(delivered) <= set(shop.codes)


def test_the_items_form_matches_region_and_denomination(client: httpx.Client, shop: Shop) -> None:
    body = {
        "items": [{"region": "us", "denomination": 50, "qty": 2}],
        "client_order_id": "ORDER-1042",
    }
    response = order(client, shop.a.headers, body)
    assert response.status_code == 201, response.text
    assert response.json()["client_order_id"] == "ORDER-1042"
    assert response.json()["items"][0]["product_id"] == "psn-us-50"


def test_partner_price_overrides_the_default(
    client: httpx.Client, shop: Shop, db: Database
) -> None:
    from codeshelf.catalog import service as catalog
    from codeshelf.partners import service as partners

    with db.session() as session:
        catalog.set_partner_price(session, partners.get_partner(session, shop.a.id), shop.sku, "45")
    assert order(client, shop.a.headers).json()["total"]["amount"] == "45.00"
    assert order(client, shop.b.headers).json()["total"]["amount"] == "46.50"


def test_not_enough_stock_is_409_and_changes_nothing(
    client: httpx.Client, shop: Shop, db: Database
) -> None:
    response = order(client, shop.a.headers, {"product_id": "psn-us-50", "quantity": 21})
    body = assert_problem(response, 409, "insufficient-stock")
    assert body["requested"] == 21
    assert balance(client, shop.a.headers) == "1000.00"
    assert available_codes(db) == 20
    assert order_count(db) == 0


def test_not_enough_money_is_402_and_changes_nothing(
    client: httpx.Client, db: Database, vault: Vault
) -> None:
    factories.add_product(db)
    poor = factories.add_partner(db, "Poor Co")
    factories.deposit(db, poor.id, "93.00")
    factories.load_codes(db, vault, "psn-us-50", 5)
    response = order(client, poor.headers, {"product_id": "psn-us-50", "quantity": 3})
    body = assert_problem(response, 402, "insufficient-funds")
    assert body["balance"] == {"amount": "93.00", "currency": "USD"}
    assert available_codes(db) == 5
    assert order_count(db) == 0
    assert (
        order(client, poor.headers, {"product_id": "psn-us-50", "quantity": 2}).status_code == 201
    )
    assert balance(client, poor.headers) == "0.00"


def test_stock_is_checked_before_money(client: httpx.Client, db: Database) -> None:
    factories.add_product(db)
    broke = factories.add_partner(db, "Broke Co")
    assert_problem(order(client, broke.headers), 409, "insufficient-stock")


def test_a_multi_item_order_is_all_or_nothing(
    client: httpx.Client, shop: Shop, db: Database, vault: Vault
) -> None:
    factories.add_product(db, "psn-us-100", face="100", price="93.00")
    factories.load_codes(db, vault, "psn-us-100", 1)
    body = {
        "items": [
            {"product_id": "psn-us-50", "quantity": 5},
            {"product_id": "psn-us-100", "quantity": 2},
        ]
    }
    assert_problem(order(client, shop.a.headers, body), 409, "insufficient-stock")
    assert available_codes(db) == 21
    assert balance(client, shop.a.headers) == "1000.00"


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({"product_id": "psn-xx-1", "quantity": 1}, "#/product_id"),
        ({"items": [{"region": "ZZ", "denomination": 50, "quantity": 1}]}, "#/items/0/region"),
        (
            {"items": [{"region": "US", "denomination": 51, "quantity": 1}]},
            "#/items/0/denomination",
        ),
    ],
)
def test_an_unknown_product_is_422_pointing_at_the_field(
    client: httpx.Client, shop: Shop, db: Database, body: dict[str, object], pointer: str
) -> None:
    response = order(client, shop.a.headers, body)
    problem = assert_problem(response, 422, "unknown-product")
    assert problem["errors"][0]["pointer"] == pointer
    assert order_count(db) == 0


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({"product_id": "psn-us-50", "quantity": 0}, "#/quantity"),
        ({"product_id": "psn-us-50", "quantity": -1}, "#/quantity"),
        ({"product_id": "psn-us-50", "quantity": "3"}, "#/quantity"),
        ({"product_id": "psn-us-50", "quantity": 1.5}, "#/quantity"),
        ({"product_id": "psn-us-50"}, "#"),
        ({"items": []}, "#/items"),
        ({"items": [{"region": "US", "quantity": 1}]}, "#/items/0"),
        ({"product_id": "psn-us-50", "quantity": 1, "surprise": True}, "#/surprise"),
    ],
)
def test_invalid_bodies_are_422_with_field_detail(
    client: httpx.Client, shop: Shop, body: dict[str, object], pointer: str
) -> None:
    problem = assert_problem(order(client, shop.a.headers, body), 422, "validation-error")
    assert pointer in [error["pointer"] for error in problem["errors"]]


def test_quantity_is_capped_by_the_setting(client: httpx.Client, shop: Shop) -> None:
    response = order(client, shop.a.headers, {"product_id": "psn-us-50", "quantity": 10_001})
    problem = assert_problem(response, 422, "validation-error")
    assert problem["errors"][0]["pointer"] == "#/quantity"
    body = {"items": [{"product_id": "psn-us-50", "quantity": 6000}] * 2}
    assert_problem(order(client, shop.a.headers, body), 422, "validation-error")


def test_an_order_in_two_currencies_is_refused(
    client: httpx.Client, shop: Shop, db: Database, vault: Vault
) -> None:
    factories.add_product(db, "psn-tr-250", region="TR", face="250", currency="TRY", price="300")
    factories.load_codes(db, vault, "psn-tr-250", 2)
    body = {
        "items": [
            {"product_id": "psn-us-50", "quantity": 1},
            {"product_id": "psn-tr-250", "quantity": 1},
        ]
    }
    assert_problem(order(client, shop.a.headers, body), 422, "mixed-currency")


def test_a_reused_client_order_id_is_409_naming_the_order(client: httpx.Client, shop: Shop) -> None:
    first = order(
        client, shop.a.headers, {"product_id": "psn-us-50", "quantity": 1, "client_order_id": "X-1"}
    )
    assert first.status_code == 201
    second = order(
        client, shop.a.headers, {"product_id": "psn-us-50", "quantity": 2, "client_order_id": "X-1"}
    )
    problem = assert_problem(second, 409, "duplicate-client-order-id")
    assert problem["existing_order_id"] == first.json()["id"]
    assert balance(client, shop.a.headers) == "953.50"
    # another partner may use the same client_order_id
    other = order(
        client, shop.b.headers, {"product_id": "psn-us-50", "quantity": 1, "client_order_id": "X-1"}
    )
    assert other.status_code == 201


def test_orders_list_filters_and_paginates(client: httpx.Client, shop: Shop) -> None:
    ids = [
        order(
            client,
            shop.a.headers,
            {"product_id": "psn-us-50", "quantity": 1, "client_order_id": f"C-{n}"},
        ).json()["id"]
        for n in range(5)
    ]
    order(client, shop.b.headers)
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/api/v1/orders", params=params, headers=shop.a.headers).json()
        seen += [row["id"] for row in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))
    by_client_id = client.get(
        "/api/v1/orders", params={"client_order_id": "C-3"}, headers=shop.a.headers
    ).json()["data"]
    assert [row["id"] for row in by_client_id] == [ids[3]]
    delivered = client.get(
        "/api/v1/orders", params={"status": "delivered"}, headers=shop.a.headers
    ).json()["data"]
    assert len(delivered) == 5
    bad = client.get("/api/v1/orders", params={"status": "lost"}, headers=shop.a.headers)
    assert_problem(bad, 422, "validation-error")
    bad_cursor = client.get("/api/v1/orders", params={"cursor": "!!"}, headers=shop.a.headers)
    assert_problem(bad_cursor, 400, "invalid-cursor")


def test_get_order_returns_the_stored_order(client: httpx.Client, shop: Shop) -> None:
    created = order(client, shop.a.headers).json()
    fetched = client.get(f"/api/v1/orders/{created['id']}", headers=shop.a.headers)
    assert fetched.status_code == 200
    assert fetched.json() == created


def test_the_order_lifecycle_only_moves_forward() -> None:
    from codeshelf.orders.models import IllegalTransitionError, Order

    placed = Order(public_id="ord_x", status="pending")
    placed.advance("paid")
    placed.advance("delivered")
    with pytest.raises(IllegalTransitionError):
        placed.advance("pending")
    with pytest.raises(IllegalTransitionError):
        Order(public_id="ord_y", status="pending").advance("delivered")
