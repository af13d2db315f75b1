"""OWASP API4/API6: every size a client controls is bounded, and refused before any work."""

from __future__ import annotations

import json

import httpx

from codeshelf.kit.db import Database
from tests.fixtures import factories
from tests.fixtures.adversarial import (
    ONE,
    ORDERS,
    assert_clean_problem,
    each,
    post_order,
    request,
    stored_keys,
)
from tests.fixtures.factories import Shop
from tests.fixtures.http import available_codes, order_count


def test_every_size_a_client_controls_is_bounded(
    client: httpx.Client, shop: Shop, db: Database
) -> None:
    line = {"product_id": "psn-us-50", "quantity": 1}
    bodies: list[tuple[dict[str, object], str]] = [
        ({"items": [line] * 101}, "#/items"),
        ({"items": []}, "#/items"),
        ({"items": [{**line, "quantity": 10_001}]}, "#/items/0/quantity"),
        ({"items": [{**line, "quantity": 5_000}] * 2 + [line]}, "#/items"),
        ({"items": [{**line, "quantity": 100}] * 100 + [line]}, "#/items"),
        ({**ONE, "quantity": 10_001}, "#/quantity"),
        ({**ONE, "product_id": "p" * 65}, "#/product_id"),
        ({**ONE, "idempotency_key": "k" * 256}, "#/idempotency_key"),
        ({"items": [{"region": "U" * 9, "denomination": 50, "quantity": 1}]}, "#/items/0/region"),
        (
            {"items": [{"region": "US", "denomination": "1" * 15, "quantity": 1}]},
            "#/items/0/denomination",
        ),
    ]

    def check_body(case: tuple[dict[str, object], str]) -> None:
        body, pointer = case
        response = post_order(client, shop.a.headers, json.dumps(body).encode())
        problem = assert_clean_problem(response, 422)
        assert pointer in [error.get("pointer") for error in problem["errors"]], problem

    each(bodies, check_body)

    queries = [
        f"{ORDERS}?limit=201",
        f"{ORDERS}?limit=0",
        f"{ORDERS}?limit=-1",
        f"{ORDERS}?limit=99999999999999999999999",
        f"{ORDERS}?client_order_id={'x' * 129}",
        "/api/v1/ledger?limit=501",
        "/api/v1/ledger?limit=0",
        f"/api/v1/ledger?currency={'X' * 1000}",
    ]

    def check_query(path: str) -> None:
        response = request(client, "GET", path, headers=shop.a.headers)
        problem = assert_clean_problem(response, 422)
        assert problem["errors"][0].get("parameter") in ("limit", "client_order_id", "currency")

    each(queries, check_query)
    assert order_count(db) == 0
    assert available_codes(db) == 20
    assert stored_keys(db) == 0


def test_the_largest_page_a_client_may_ask_for_is_served_in_full(
    client: httpx.Client, shop: Shop
) -> None:
    for path, limit in ((ORDERS, 200), ("/api/v1/ledger", 500)):
        page = request(client, "GET", f"{path}?limit={limit}", headers=shop.a.headers)
        assert page.status_code == 200, page.text
        assert page.json()["next_cursor"] is None


def test_a_rate_limited_order_does_no_work_and_does_not_burn_its_key(
    client: httpx.Client, shop: Shop, db: Database
) -> None:
    limited = factories.add_partner(db, "Tight Budget", rate_limit=2)
    factories.deposit(db, limited.id, "100.00")
    for _ in range(2):  # the whole quota, spent on refused requests
        refused = post_order(client, limited.headers, b"[]")
        assert_clean_problem(refused, 422)
    response = post_order(client, limited.headers, json.dumps(ONE).encode(), key="later")
    problem = assert_clean_problem(response, 429)
    assert problem["type"] == "https://iana.org/assignments/http-problem-types#quota-exceeded"
    assert int(response.headers["retry-after"]) >= 1
    assert "r=0;" in response.headers["ratelimit"]
    assert order_count(db) == 0
    assert stored_keys(db) == 0
    # Other partners are not slowed down by this one's quota.
    other = post_order(client, shop.a.headers, json.dumps(ONE).encode(), key="later")
    assert other.status_code == 201, other.text
