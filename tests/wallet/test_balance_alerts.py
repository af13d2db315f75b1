"""Low-balance alerts: ``/balance/alerts`` and the ``balance.low`` event.

A partner sets, per currency, a threshold; a debit or a hold that takes the wallet from at or
above it to below it emits ``balance.low`` (once per crossing), seen in ``GET /events``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx

from codeshelf.kit.clock import utcnow
from codeshelf.kit.db import Database
from codeshelf.orders import service as orders
from codeshelf.orders.service import fulfilment
from codeshelf.orders.service.review import ReviewLimits
from codeshelf.partners import service as partners
from tests.fixtures import factories
from tests.fixtures.factories import Shop
from tests.fixtures.http import assert_problem, balance, order

ALERTS = "/api/v1/balance/alerts"


def alerts(client: httpx.Client, headers: dict[str, str]) -> list[dict[str, str]]:
    response = client.get(ALERTS, headers=headers)
    assert response.status_code == 200, response.text
    data: list[dict[str, str]] = response.json()["data"]
    return data


def put_alert(
    client: httpx.Client, headers: dict[str, str], currency: str, below: Any
) -> httpx.Response:
    return client.put(f"{ALERTS}/{currency}", json={"below": below}, headers=headers)


def low_events(client: httpx.Client, headers: dict[str, str]) -> list[dict[str, Any]]:
    response = client.get("/api/v1/events", params={"type": "balance.low"}, headers=headers)
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()["data"]
    assert all(e["type"] == "balance.low" for e in events)
    return [e["payload"] for e in events]


def buy(client: httpx.Client, headers: dict[str, str], quantity: int = 1) -> None:
    placed = order(client, headers, {"product_id": "psn-us-50", "quantity": quantity})
    assert placed.status_code == 201, placed.text
    assert placed.json()["status"] == "delivered"


def usd(amount: str) -> dict[str, str]:
    return {"amount": amount, "currency": "USD"}


# --- the alerts resource -----------------------------------------------------------------------


def test_an_alert_is_set_listed_changed_and_removed(client: httpx.Client, shop: Shop) -> None:
    assert alerts(client, shop.a.headers) == []

    created = put_alert(client, shop.a.headers, "USD", "100.00")
    assert created.status_code == 200, created.text
    assert created.json() == {"data": [usd("100.00")]}
    assert alerts(client, shop.a.headers) == [usd("100.00")]

    # The currency is case-insensitive; a second PUT replaces the threshold.
    changed = put_alert(client, shop.a.headers, "usd", "250.5")
    assert changed.json() == {"data": [usd("250.50")]}
    put_alert(client, shop.a.headers, "JPY", "5000")
    assert alerts(client, shop.a.headers) == [
        {"amount": "5000", "currency": "JPY"},
        usd("250.50"),
    ]

    removed = client.delete(f"{ALERTS}/USD", headers=shop.a.headers)
    assert removed.status_code == 204
    assert removed.content == b""
    assert alerts(client, shop.a.headers) == [{"amount": "5000", "currency": "JPY"}]
    # Removing what is not there is not an error.
    assert client.delete(f"{ALERTS}/usd", headers=shop.a.headers).status_code == 204
    assert alerts(client, shop.a.headers) == [{"amount": "5000", "currency": "JPY"}]


BAD_ALERTS: list[tuple[str, dict[str, Any], dict[str, str]]] = [
    ("XXQ", {"below": "100.00"}, {"parameter": "currency"}),
    ("US", {"below": "100.00"}, {"parameter": "currency"}),
    ("USDX", {"below": "100.00"}, {"parameter": "currency"}),
    ("USD", {"below": "0"}, {"pointer": "#/below"}),
    ("USD", {"below": "0.00"}, {"pointer": "#/below"}),
    ("USD", {"below": "-5.00"}, {"pointer": "#/below"}),
    ("USD", {"below": "abc"}, {"pointer": "#/below"}),
    ("USD", {"below": ""}, {"pointer": "#/below"}),
    ("USD", {"below": "1.001"}, {"pointer": "#/below"}),  # more decimals than USD has
    ("JPY", {"below": "100.5"}, {"pointer": "#/below"}),  # JPY has none
    ("USD", {"below": 100}, {"pointer": "#/below"}),  # a number, not a decimal string
    ("USD", {"below": "1e3"}, {"pointer": "#/below"}),
    ("USD", {}, {"pointer": "#/below"}),
    ("USD", {"below": "100.00", "above": "5.00"}, {"pointer": "#/above"}),
]


def _locations(problem: dict[str, Any]) -> list[dict[str, str]]:
    return [{k: v for k, v in error.items() if k != "detail"} for error in problem["errors"]]


def test_a_bad_alert_is_refused_with_a_problem_naming_the_field(
    client: httpx.Client, shop: Shop
) -> None:
    # One server for all the cases: each is a single request.
    for currency, body, where in BAD_ALERTS:
        response = client.put(f"{ALERTS}/{currency}", json=body, headers=shop.a.headers)
        problem = assert_problem(response, 422, "validation-error")
        assert where in _locations(problem), (currency, body, problem)
    deleted = client.delete(f"{ALERTS}/XXQ", headers=shop.a.headers)
    assert {"parameter": "currency"} in _locations(assert_problem(deleted, 422, "validation-error"))
    # Without a key, nothing at all.
    assert_problem(client.get(ALERTS), 401, "unauthorized")
    assert_problem(client.put(f"{ALERTS}/USD", json={"below": "1.00"}), 401, "unauthorized")
    assert_problem(client.delete(f"{ALERTS}/USD"), 401, "unauthorized")
    assert alerts(client, shop.a.headers) == []


def test_another_partner_never_sees_or_changes_an_alert(client: httpx.Client, shop: Shop) -> None:
    assert put_alert(client, shop.a.headers, "USD", "100.00").status_code == 200
    assert alerts(client, shop.b.headers) == []
    assert client.delete(f"{ALERTS}/USD", headers=shop.b.headers).status_code == 204
    assert alerts(client, shop.a.headers) == [usd("100.00")]
    assert put_alert(client, shop.b.headers, "USD", "50.00").status_code == 200
    assert alerts(client, shop.a.headers) == [usd("100.00")]
    assert alerts(client, shop.b.headers) == [usd("50.00")]


def test_removing_an_alert_that_was_never_set_changes_no_balance(
    client: httpx.Client, shop: Shop
) -> None:
    before = client.get("/api/v1/balance", headers=shop.a.headers).json()
    assert client.delete(f"{ALERTS}/EUR", headers=shop.a.headers).status_code == 204
    after = client.get("/api/v1/balance", headers=shop.a.headers).json()
    assert after == before


# --- the balance.low event ---------------------------------------------------------------------


def test_balance_low_is_emitted_once_per_crossing(
    client: httpx.Client, db: Database, shop: Shop
) -> None:
    assert put_alert(client, shop.a.headers, "USD", "907.00").status_code == 200
    buy(client, shop.a.headers)  # 953.50
    buy(client, shop.a.headers)  # 907.00: at the threshold, not below it
    assert balance(client, shop.a.headers) == "907.00"
    assert low_events(client, shop.a.headers) == []

    buy(client, shop.a.headers)  # 860.50: crosses
    [first] = low_events(client, shop.a.headers)
    assert first["balance"] == usd("860.50")
    assert first["alert_below"] == usd("907.00")
    assert first["event"] == "balance.low" and first["id"] and first["timestamp"]

    buy(client, shop.a.headers)  # 814.00: already below, no new event
    assert len(low_events(client, shop.a.headers)) == 1

    factories.deposit(db, shop.a.id, "200.00")  # 1014.00: back above (a credit emits nothing)
    assert len(low_events(client, shop.a.headers)) == 1
    buy(client, shop.a.headers)  # 967.50
    buy(client, shop.a.headers)  # 921.00
    assert len(low_events(client, shop.a.headers)) == 1
    buy(client, shop.a.headers, quantity=2)  # 828.00: crosses again
    events = low_events(client, shop.a.headers)
    assert [e["balance"] for e in events] == [usd("860.50"), usd("828.00")]

    # The other partner, with no alert, crossed the same amounts and saw nothing.
    for _ in range(4):
        buy(client, shop.b.headers)
    assert low_events(client, shop.b.headers) == []


def test_nothing_is_emitted_without_a_crossing(client: httpx.Client, shop: Shop) -> None:
    # An alert removed before the debit that would have crossed it.
    assert put_alert(client, shop.a.headers, "USD", "990.00").status_code == 200
    assert client.delete(f"{ALERTS}/USD", headers=shop.a.headers).status_code == 204
    buy(client, shop.a.headers)  # 953.50
    # An alert set above the balance: the wallet is already low; nothing crossed, nothing sent.
    assert put_alert(client, shop.a.headers, "USD", "960.00").status_code == 200
    buy(client, shop.a.headers)  # 907.00
    # A refused order (a 930.00 backorder) moves no money and emits nothing.
    assert put_alert(client, shop.a.headers, "USD", "100.00").status_code == 200
    body = {"product_id": "psn-us-50", "quantity": 20, "allow_backorder": True}
    assert_problem(order(client, shop.a.headers, body), 402, "insufficient-funds")
    assert balance(client, shop.a.headers) == "907.00"
    assert low_events(client, shop.a.headers) == []


def test_a_backorder_hold_that_crosses_the_threshold_emits_balance_low(
    client: httpx.Client, db: Database, shop: Shop
) -> None:
    assert put_alert(client, shop.a.headers, "USD", "500.00").status_code == 200
    body = {"product_id": "psn-us-50", "quantity": 21, "allow_backorder": True}
    waiting = order(client, shop.a.headers, body)
    assert waiting.status_code == 201, waiting.text
    assert waiting.json()["status"] == "pending"
    [held] = low_events(client, shop.a.headers)
    assert held["balance"] == usd("23.50")
    assert held["alert_below"] == usd("500.00")

    # A backorder the rest of the wallet cannot cover is refused and emits nothing more.
    poor = order(client, shop.a.headers, {**body, "quantity": 1})
    assert_problem(poor, 402, "insufficient-funds")
    assert len(low_events(client, shop.a.headers)) == 1

    # The backorder expires: its hold comes back (no event), and the next hold crosses again.
    with db.session() as session:
        expired = fulfilment.expire_backorders(session, utcnow() + timedelta(days=30))
    assert expired == [waiting.json()["id"]]
    assert balance(client, shop.a.headers) == "1000.00"
    assert len(low_events(client, shop.a.headers)) == 1
    again = order(client, shop.a.headers, body)
    assert again.status_code == 201, again.text
    events = low_events(client, shop.a.headers)
    assert [e["balance"] for e in events] == [usd("23.50"), usd("23.50")]


def test_a_hold_for_review_that_crosses_the_threshold_emits_balance_low(
    client: httpx.Client, db: Database, shop: Shop
) -> None:
    assert put_alert(client, shop.a.headers, "USD", "900.00").status_code == 200
    with db.session() as session:
        partner = partners.get_partner(session, shop.a.id)
        item = orders.ItemRequest(quantity=3, pointer="#", product_id="psn-us-50")
        priced = orders.price_items(session, partner, [item])
        placed = orders.place_order(
            session, partner, priced, None, limits=ReviewLimits(quantity_over=2)
        )
    assert placed.status == "pending"
    [held] = low_events(client, shop.a.headers)
    assert held["balance"] == usd("860.50")
    # Approved: paid from the hold, so the wallet does not move and nothing more is emitted.
    with db.session() as session:
        fulfilment.decide_review(
            session,
            placed.public_id,
            approve=True,
            actor="operator:test",
            reason="known customer",
            now=utcnow(),
        )
    assert balance(client, shop.a.headers) == "860.50"
    assert len(low_events(client, shop.a.headers)) == 1
