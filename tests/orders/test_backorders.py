"""Backorders: `allow_backorder` orders that wait, their money held, for stock to arrive; filled
whole, first come first served, by the stock import (and the worker); failed at their deadline.

Most tests use CHEAP (psn-us-10, 9.30 USD) and OTHER (psn-us-20, 18.60 USD), which start out of
stock; the shop's psn-us-50 has 20 codes. Partners a and b have 1000.00 USD each.
"""

from __future__ import annotations

import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

from codeshelf.kit.clock import utcnow
from codeshelf.kit.db import Database
from codeshelf.kit.settings import Settings
from codeshelf.kit.vault import Vault
from codeshelf.orders import service as orders
from codeshelf.orders.models import Order
from codeshelf.orders.service import fulfilment
from codeshelf.partners import service as partners
from tests.fixtures import factories
from tests.fixtures.backorders import (
    CHEAP,
    CHEAP_PRICE_MINOR,
    DELAYED,
    FAILED,
    OTHER,
    OTHER_PRICE_MINOR,
    READY,
    add_empty_products,
    assert_consistent,
    available,
    backorder,
    event_trail,
    events,
    get_order,
    import_with_cli,
    ledger,
    money,
    parse_time,
    placed,
    promised,
    restock,
    revealed,
    status_of,
    usd,
    wait_for_lock_waiters,
)
from tests.fixtures.factories import Shop
from tests.fixtures.http import (
    assert_problem,
    available_codes,
    order,
    order_count,
    second_while_first_is_open,
)
from tests.fixtures.servers import LiveServer, serve

MAX_HOURS = 72


@pytest.fixture
def empty(shop: Shop, db: Database) -> Shop:
    """The shop, plus CHEAP and OTHER with no stock."""
    add_empty_products(db)
    return shop


def _left(spent_minor: int, start_minor: int = 100_000) -> str:
    return usd(start_minor - spent_minor)


# --- placing -------------------------------------------------------------------------------


def test_a_backorder_with_enough_stock_is_delivered_at_once(
    client: httpx.Client, shop: Shop, db: Database
) -> None:
    body = placed(backorder(client, shop.a.headers, 3, shop.sku), "delivered")
    assert body["waiting_for"] is None and body["review_required"] is False
    assert body["customer_message"] == READY
    assert body["total"] == {"amount": "139.50", "currency": "USD"}
    assert body["delivered_at"] is not None and body["failure_reason"] is None
    assert money(client, shop.a.headers) == ("860.50", "0.00")
    codes = revealed(client, shop.a.headers, body["id"])
    assert len(set(codes)) == 3 and set(codes) <= set(shop.codes)
    assert event_trail(client, shop.a.headers, body["id"]) == [
        ("order.created", "pending"),
        ("order.paid", "paid"),
        ("order.fulfilled", "delivered"),
    ]
    assert [kind for kind, _, _ in ledger(client, shop.a.headers)] == ["deposit", "order"]
    assert promised(db, shop.sku) == 0
    assert available(client, shop.a.headers, shop.sku) == 17

    # Exactly what the same order without allow_backorder gets.
    normal = placed(
        order(client, shop.b.headers, {"product_id": shop.sku, "quantity": 3}), "delivered"
    )
    same = ("status", "waiting_for", "review_required", "customer_message", "total", "items")
    assert {k: body[k] for k in same} == {k: normal[k] for k in same}
    assert [t for t, _ in event_trail(client, shop.b.headers, normal["id"])] == [
        t for t, _ in event_trail(client, shop.a.headers, body["id"])
    ]
    assert money(client, shop.b.headers) == ("860.50", "0.00")
    assert_consistent(db)


def test_short_stock_is_accepted_as_a_pending_backorder_with_its_total_held(
    client: httpx.Client, empty: Shop, db: Database
) -> None:
    before = utcnow()
    response = backorder(client, empty.a.headers, 5, client_order_id="BO-1")
    after = utcnow()
    body = placed(response, "pending")
    assert response.headers["location"] == f"/api/v1/orders/{body['id']}"
    assert body["waiting_for"] == "stock"
    assert body["review_required"] is False
    assert body["allow_backorder"] is True
    assert body["customer_message"] == DELAYED
    assert "delayed" in body["customer_message"]
    assert body["failure_reason"] is None and body["delivered_at"] is None
    assert body["total"] == {"amount": "46.50", "currency": "USD"}
    until = parse_time(body["backorder_until"])
    assert before + timedelta(hours=MAX_HOURS) <= until <= after + timedelta(hours=MAX_HOURS)

    # The same, read back.
    stored = get_order(client, empty.a.headers, body["id"])
    assert stored["status"] == "pending" and stored["waiting_for"] == "stock"
    assert parse_time(stored["backorder_until"]) == until

    # The money is held, not spent: out of the available balance, into `held`.
    assert money(client, empty.a.headers) == ("953.50", "46.50")
    assert ledger(client, empty.a.headers)[1:] == [("hold", "-46.50", body["id"])]
    # No codes yet, and none can be fetched.
    assert_problem(client.get(body["codes_url"], headers=empty.a.headers), 409, "codes-not-ready")
    assert promised(db, CHEAP) == 5
    assert event_trail(client, empty.a.headers, body["id"]) == [("order.created", "pending")]
    [created] = events(client, empty.a.headers, body["id"])
    assert created["payload"]["client_order_id"] == "BO-1"
    assert parse_time(created["payload"]["backorder_until"]) == until
    listed = client.get(
        "/api/v1/orders", params={"status": "pending"}, headers=empty.a.headers
    ).json()
    assert [o["id"] for o in listed["data"]] == [body["id"]]
    assert_consistent(db)


def test_a_partner_deadline_is_honoured(client: httpx.Client, empty: Shop, db: Database) -> None:
    plus_two = timezone(timedelta(hours=2))
    deadline = (utcnow() + timedelta(hours=10)).replace(microsecond=0).astimezone(plus_two)
    body = placed(
        backorder(client, empty.a.headers, 2, backorder_until=deadline.isoformat()), "pending"
    )
    assert parse_time(body["backorder_until"]) == deadline
    assert parse_time(get_order(client, empty.a.headers, body["id"])["backorder_until"]) == deadline
    # One just inside the cap is accepted too.
    near_cap = utcnow() + timedelta(hours=MAX_HOURS) - timedelta(minutes=1)
    late = placed(
        backorder(client, empty.a.headers, 1, backorder_until=near_cap.isoformat()), "pending"
    )
    assert parse_time(late["backorder_until"]) == near_cap
    assert promised(db, CHEAP) == 3
    assert_consistent(db)


def test_the_cap_is_the_operators_setting(settings: Settings, db: Database) -> None:
    add_empty_products(db)
    short = settings.model_copy(update={"backorder_max_hours": 2})
    acme = factories.add_partner(db, "Capped Co")
    factories.deposit(db, acme.id, "100.00")
    with serve(short, db) as http:
        before = utcnow()
        body = placed(backorder(http, acme.headers, 1), "pending")
        until = parse_time(body["backorder_until"])
        assert before + timedelta(hours=2) <= until <= utcnow() + timedelta(hours=2)
        beyond = (utcnow() + timedelta(hours=3)).isoformat()
        response = backorder(http, acme.headers, 1, backorder_until=beyond)
        problem = assert_problem(response, 422, "validation-error")
        assert [e["pointer"] for e in problem["errors"]] == ["#/backorder_until"]
    assert order_count(db) == 1


def _in(delta: timedelta) -> str:
    return (utcnow() + delta).isoformat()


def test_a_bad_deadline_is_422_at_backorder_until(
    client: httpx.Client, empty: Shop, db: Database
) -> None:
    for deadline in (
        _in(-timedelta(minutes=1)),  # past
        _in(timedelta(hours=MAX_HOURS, minutes=5)),  # beyond the cap
        "2030-01-01T00:00:00",  # no time zone
        "tomorrow",
    ):
        response = backorder(client, empty.a.headers, 2, backorder_until=deadline)
        problem = assert_problem(response, 422, "validation-error")
        assert [e["pointer"] for e in problem["errors"]] == ["#/backorder_until"], problem
    assert order_count(db) == 0
    assert money(client, empty.a.headers) == ("1000.00", "0.00")
    assert promised(db, CHEAP) == 0


def test_a_deadline_without_allow_backorder_is_422(
    client: httpx.Client, empty: Shop, db: Database
) -> None:
    body = {"product_id": CHEAP, "quantity": 2, "backorder_until": _in(timedelta(hours=1))}
    for allow in ({"allow_backorder": False}, {}):
        response = order(client, empty.a.headers, {**body, **allow})
        problem = assert_problem(response, 422, "validation-error")
        assert "allow_backorder" in problem["detail"]
    assert order_count(db) == 0


def test_a_deadline_without_allow_backorder_points_at_backorder_until(
    client: httpx.Client, empty: Shop
) -> None:
    body = {"product_id": CHEAP, "quantity": 2, "backorder_until": _in(timedelta(hours=1))}
    problem = assert_problem(order(client, empty.a.headers, body), 422, "validation-error")
    assert [e["pointer"] for e in problem["errors"]] == ["#/backorder_until"], problem


def test_without_allow_backorder_short_stock_is_still_refused(
    client: httpx.Client, shop: Shop, db: Database
) -> None:
    for allow in ({"allow_backorder": False}, {}):
        body = {"product_id": shop.sku, "quantity": 21, **allow}
        problem = assert_problem(order(client, shop.a.headers, body), 409, "insufficient-stock")
        assert problem["requested"] == 21
    assert order_count(db) == 0
    assert available_codes(db) == 20
    assert money(client, shop.a.headers) == ("1000.00", "0.00")
    assert events(client, shop.a.headers) == []
    assert promised(db, shop.sku) == 0
    assert_consistent(db)


def test_a_hold_the_wallet_cannot_cover_is_402_and_leaves_nothing(
    client: httpx.Client, empty: Shop, db: Database, vault: Vault
) -> None:
    poor = factories.add_partner(db, "Poor Co")
    factories.deposit(db, poor.id, "40.00")
    problem = assert_problem(backorder(client, poor.headers, 5), 402, "insufficient-funds")
    assert problem["balance"] == {"amount": "40.00", "currency": "USD"}
    assert order_count(db) == 0
    assert money(client, poor.headers) == ("40.00", "0.00")
    assert [kind for kind, _, _ in ledger(client, poor.headers)] == ["deposit"]
    assert promised(db, CHEAP) == 0
    assert events(client, poor.headers) == []
    assert_consistent(db)
    # What the wallet does cover still backorders.
    body = placed(backorder(client, poor.headers, 4), "pending")
    assert money(client, poor.headers) == ("2.80", "37.20")
    assert promised(db, CHEAP) == 4
    # And stock arriving delivers it.
    _, delivered = restock(db, vault, CHEAP, 4)
    assert delivered == [body["id"]]
    assert money(client, poor.headers) == ("2.80", "0.00")
    assert_consistent(db)


# --- whole or nothing ----------------------------------------------------------------------


def test_a_backorder_larger_than_the_stock_takes_none_of_it(
    client: httpx.Client, empty: Shop, db: Database, vault: Vault
) -> None:
    first_batch = factories.load_codes(db, vault, CHEAP, 3)
    body = placed(backorder(client, empty.a.headers, 5), "pending")
    assert available_codes(db) == 20 + 3  # nothing of CHEAP was taken
    # Nor set aside: a backorder waits for stock that arrives after it (issue 15, item 7).
    assert available(client, empty.b.headers, CHEAP) == 3
    assert_problem(client.get(body["codes_url"], headers=empty.a.headers), 409, "codes-not-ready")
    # Two more codes arrive: now all five are there, and it is delivered whole.
    second_batch, delivered = restock(db, vault, CHEAP, 2)
    assert delivered == [body["id"]]
    codes = revealed(client, empty.a.headers, body["id"])
    assert sorted(codes) == sorted(first_batch + second_batch)
    # Filling again delivers nothing twice.
    with db.session() as session:
        assert fulfilment.fill_backorders(session) == []
    assert revealed(client, empty.a.headers, body["id"]) == codes
    fulfilled = [e for e in events(client, empty.a.headers) if e["type"] == "order.fulfilled"]
    assert len(fulfilled) == 1
    assert money(client, empty.a.headers) == (_left(5 * CHEAP_PRICE_MINOR), "0.00")
    assert_consistent(db)


def test_a_multi_item_backorder_waits_whole(
    client: httpx.Client, empty: Shop, db: Database, vault: Vault
) -> None:
    factories.load_codes(db, vault, OTHER, 1)
    body = {
        "items": [{"product_id": empty.sku, "quantity": 5}, {"product_id": OTHER, "quantity": 2}],
        "allow_backorder": True,
    }
    pending = placed(order(client, empty.a.headers, body), "pending")
    total = 5 * 4650 + 2 * OTHER_PRICE_MINOR
    assert pending["total"]["amount"] == usd(total)
    assert available_codes(db) == 21  # psn-us-50 was in stock, yet none of it was taken
    # Both lines wait, but what was in stock stays on sale: only arrivals are set aside.
    assert promised(db, empty.sku) == 5 and promised(db, OTHER) == 2
    assert available(client, empty.b.headers, empty.sku) == 20
    assert available(client, empty.b.headers, OTHER) == 1
    assert money(client, empty.a.headers) == (_left(total), usd(total))
    _, delivered = restock(db, vault, OTHER, 1)
    assert delivered == [pending["id"]]
    codes = client.get(pending["codes_url"], headers=empty.a.headers).json()["codes"]
    assert sorted(row["product_id"] for row in codes) == [OTHER] * 2 + [empty.sku] * 5
    assert money(client, empty.a.headers) == (_left(total), "0.00")
    assert available(client, empty.b.headers, empty.sku) == 15
    assert_consistent(db)


# --- filling -------------------------------------------------------------------------------


def test_the_stock_import_command_delivers_a_waiting_backorder(
    client: httpx.Client, empty: Shop, db: Database, database_url: str, tmp_path: Path
) -> None:
    body = placed(backorder(client, empty.a.headers, 5), "pending")
    codes, result = import_with_cli(database_url, tmp_path, CHEAP, 6)
    assert f"backorders delivered: {body['id']}" in result.stderr

    delivered = get_order(client, empty.a.headers, body["id"])
    assert delivered["status"] == "delivered"
    assert delivered["waiting_for"] is None
    assert delivered["customer_message"] == READY
    assert delivered["delivered_at"] is not None
    assert parse_time(delivered["delivered_at"]) >= parse_time(delivered["created_at"])
    got = revealed(client, empty.a.headers, body["id"])
    assert len(set(got)) == 5 and set(got) <= set(codes)

    # The hold was captured: nothing held, the wallet is the deposit less the total.
    total = 5 * CHEAP_PRICE_MINOR
    assert money(client, empty.a.headers) == (_left(total), "0.00")
    assert ledger(client, empty.a.headers)[1:] == [("hold", f"-{usd(total)}", body["id"])]
    assert event_trail(client, empty.a.headers, body["id"]) == [
        ("order.created", "pending"),
        ("order.paid", "paid"),
        ("order.fulfilled", "delivered"),
    ]
    assert promised(db, CHEAP) == 0
    assert available(client, empty.b.headers, CHEAP) == 1
    assert_consistent(db)


def test_backorders_are_filled_oldest_first_and_a_blocked_product_blocks_only_itself(
    client: httpx.Client, empty: Shop, db: Database, vault: Vault
) -> None:
    oldest = placed(backorder(client, empty.a.headers, 5), "pending")["id"]
    younger = placed(backorder(client, empty.b.headers, 2), "pending")["id"]
    other = placed(backorder(client, empty.b.headers, 3, OTHER), "pending")["id"]
    youngest = placed(backorder(client, empty.a.headers, 1), "pending")["id"]

    # Three codes of CHEAP would do for `younger`, but `oldest` is first in line.
    factories.load_codes(db, vault, CHEAP, 3)
    _, delivered = restock(db, vault, OTHER, 3)
    assert delivered == [other]
    assert status_of(client, empty.a.headers, oldest) == "pending"
    assert status_of(client, empty.b.headers, younger) == "pending"
    assert status_of(client, empty.a.headers, youngest) == "pending"
    assert available(client, empty.a.headers, CHEAP) == 0
    assert promised(db, CHEAP) == 8
    assert_consistent(db)

    # Four more: enough for the oldest two (7 in stock, 5 + 2 wanted), not the youngest.
    _, delivered = restock(db, vault, CHEAP, 4)
    assert delivered == [oldest, younger]
    assert status_of(client, empty.a.headers, youngest) == "pending"
    assert promised(db, CHEAP) == 1
    assert_consistent(db)
    _, delivered = restock(db, vault, CHEAP, 1)
    assert delivered == [youngest]
    assert promised(db, CHEAP) == 0
    assert_consistent(db)


def test_the_youngest_waits_when_stock_runs_out_before_it(
    client: httpx.Client, empty: Shop, db: Database, vault: Vault
) -> None:
    first = placed(backorder(client, empty.a.headers, 3), "pending")["id"]
    second = placed(backorder(client, empty.b.headers, 3), "pending")["id"]
    third = placed(backorder(client, empty.a.headers, 1), "pending")["id"]
    # Four codes: the first order, then not the second (3 > 1 left): the third stays behind it.
    _, delivered = restock(db, vault, CHEAP, 4)
    assert delivered == [first]
    assert status_of(client, empty.b.headers, second) == "pending"
    assert status_of(client, empty.a.headers, third) == "pending"
    assert available(client, empty.a.headers, CHEAP) == 0  # 1 in stock, 4 promised
    assert promised(db, CHEAP) == 4
    _, delivered = restock(db, vault, CHEAP, 3)
    assert delivered == [second, third]
    assert available_codes(db) == 20
    assert_consistent(db)


def test_a_partial_import_through_the_cli_leaves_everything_pending(
    client: httpx.Client, empty: Shop, db: Database, database_url: str, tmp_path: Path
) -> None:
    big = placed(backorder(client, empty.a.headers, 5), "pending")["id"]
    small = placed(backorder(client, empty.b.headers, 1), "pending")["id"]
    _, result = import_with_cli(database_url, tmp_path, CHEAP, 4)
    assert "backorders delivered" not in result.stderr
    assert status_of(client, empty.a.headers, big) == "pending"
    assert status_of(client, empty.b.headers, small) == "pending"
    assert money(client, empty.a.headers) == (
        _left(5 * CHEAP_PRICE_MINOR),
        usd(5 * CHEAP_PRICE_MINOR),
    )
    assert money(client, empty.b.headers) == (_left(CHEAP_PRICE_MINOR), usd(CHEAP_PRICE_MINOR))
    assert_consistent(db)
    _, result = import_with_cli(database_url, tmp_path, CHEAP, 2)
    assert f"backorders delivered: {big}, {small}" in result.stderr
    assert_consistent(db)


# --- promises ------------------------------------------------------------------------------


def test_codes_promised_to_a_backorder_are_not_sold_to_others(
    client: httpx.Client, empty: Shop, db: Database, vault: Vault
) -> None:
    waiting = placed(backorder(client, empty.a.headers, 5), "pending")["id"]
    # Six codes arrive, but nothing has filled the backorder yet (imported without the CLI).
    factories.load_codes(db, vault, CHEAP, 6)
    assert available(client, empty.b.headers, CHEAP) == 1  # 6 in stock, 5 promised
    refused = assert_problem(
        order(client, empty.b.headers, {"product_id": CHEAP, "quantity": 2}),
        409,
        "insufficient-stock",
    )
    assert refused["requested"] == 2 and refused["available"] == 1
    # The one free code can be sold.
    placed(order(client, empty.b.headers, {"product_id": CHEAP, "quantity": 1}), "delivered")
    assert available(client, empty.b.headers, CHEAP) == 0
    assert_problem(
        order(client, empty.b.headers, {"product_id": CHEAP, "quantity": 1}),
        409,
        "insufficient-stock",
    )
    # A newcomer allowed to wait waits behind the first backorder, promised too.
    later = placed(backorder(client, empty.b.headers, 1), "pending")["id"]
    assert promised(db, CHEAP) == 6
    assert_consistent(db)
    with db.session() as session:
        assert fulfilment.fill_backorders(session) == [waiting]
    assert status_of(client, empty.b.headers, later) == "pending"
    assert promised(db, CHEAP) == 1
    assert_consistent(db)


# --- expiry --------------------------------------------------------------------------------


def test_an_expired_backorder_fails_and_its_hold_comes_back(
    client: httpx.Client, empty: Shop, db: Database, vault: Vault
) -> None:
    body = placed(backorder(client, empty.a.headers, 5), "pending")
    until = parse_time(body["backorder_until"])
    with db.session() as session:  # before the deadline nothing happens
        assert fulfilment.tick(session, until - timedelta(seconds=1)) == ([], [])
    assert status_of(client, empty.a.headers, body["id"]) == "pending"

    with db.session() as session:
        assert fulfilment.tick(session, until + timedelta(seconds=1)) == ([body["id"]], [])
    failed = get_order(client, empty.a.headers, body["id"])
    assert failed["status"] == "failed"
    assert failed["failure_reason"] == "backorder_expired"
    assert failed["waiting_for"] is None
    assert failed["customer_message"] == FAILED
    assert failed["delivered_at"] is None
    assert money(client, empty.a.headers) == ("1000.00", "0.00")
    total = usd(5 * CHEAP_PRICE_MINOR)
    assert ledger(client, empty.a.headers)[1:] == [
        ("hold", f"-{total}", body["id"]),
        ("release", total, body["id"]),
    ]
    assert event_trail(client, empty.a.headers, body["id"]) == [
        ("order.created", "pending"),
        ("order.failed", "failed"),
    ]
    [failed_event] = events(client, empty.a.headers, body["id"])[1:]
    assert failed_event["payload"]["failure_reason"] == "backorder_expired"
    assert promised(db, CHEAP) == 0
    assert_consistent(db)

    # Stock arriving later does not revive it.
    _, delivered = restock(db, vault, CHEAP, 5)
    assert delivered == []
    assert status_of(client, empty.a.headers, body["id"]) == "failed"
    assert_problem(client.get(body["codes_url"], headers=empty.a.headers), 409, "codes-not-ready")
    assert available(client, empty.b.headers, CHEAP) == 5
    assert money(client, empty.a.headers) == ("1000.00", "0.00")
    assert_consistent(db)


def test_an_expired_head_of_the_line_unblocks_the_next_in_the_same_tick(
    client: httpx.Client, empty: Shop, db: Database, vault: Vault
) -> None:
    soon = (utcnow() + timedelta(hours=1)).isoformat()
    head = placed(backorder(client, empty.a.headers, 5, backorder_until=soon), "pending")
    behind = placed(backorder(client, empty.b.headers, 2), "pending")
    factories.load_codes(db, vault, CHEAP, 3)
    with db.session() as session:
        assert fulfilment.fill_backorders(session) == []
    at = parse_time(head["backorder_until"]) + timedelta(minutes=1)
    with db.session() as session:
        assert fulfilment.tick(session, at) == ([head["id"]], [behind["id"]])
    assert money(client, empty.a.headers) == ("1000.00", "0.00")
    assert money(client, empty.b.headers) == (_left(2 * CHEAP_PRICE_MINOR), "0.00")
    assert available(client, empty.a.headers, CHEAP) == 1
    assert_consistent(db)


def test_the_worker_fails_backorders_past_their_deadline_and_fills_the_rest(
    client: httpx.Client, empty: Shop, db: Database, vault: Vault, database_url: str
) -> None:
    late = placed(backorder(client, empty.a.headers, 5), "pending")["id"]
    on_time = placed(backorder(client, empty.b.headers, 1), "pending")["id"]
    factories.load_codes(db, vault, CHEAP, 1)  # not enough for `late`, which blocks `on_time`
    # Time passes for the first one: its deadline is now behind us.
    with db.session() as session:
        session.execute(
            update(Order)
            .where(Order.public_id == late)
            .values(backorder_until=utcnow() - timedelta(minutes=1))
        )
    handlers = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
    try:
        result = factories.run_cli(database_url, "worker", "--once")
    finally:
        signal.signal(signal.SIGINT, handlers[0])
        signal.signal(signal.SIGTERM, handlers[1])
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    assert f"backorders expired: {late}" in result.stderr
    assert f"backorders delivered: {on_time}" in result.stderr
    failed = get_order(client, empty.a.headers, late)
    assert (failed["status"], failed["failure_reason"]) == ("failed", "backorder_expired")
    assert money(client, empty.a.headers) == ("1000.00", "0.00")
    assert len(revealed(client, empty.b.headers, on_time)) == 1
    assert money(client, empty.b.headers) == (_left(CHEAP_PRICE_MINOR), "0.00")
    assert promised(db, CHEAP) == 0
    assert [t for t, _ in event_trail(client, empty.a.headers, late)] == [
        "order.created",
        "order.failed",
    ]
    assert_consistent(db)


# --- concurrency ---------------------------------------------------------------------------


def _waiting_and_restocked(client: httpx.Client, shop: Shop, db: Database, vault: Vault) -> str:
    """A backorder of 5 CHEAP codes, and 6 codes imported but not yet given to it."""
    waiting: str = placed(backorder(client, shop.a.headers, 5), "pending")["id"]
    factories.load_codes(db, vault, CHEAP, 6)
    return waiting


@pytest.mark.live  # concurrent transactions: real commits
def test_an_order_racing_a_fill_takes_only_the_free_code(
    client: httpx.Client, empty: Shop, db: Database, vault: Vault
) -> None:
    waiting = _waiting_and_restocked(client, empty, db, vault)
    filled: list[str] = []
    two, one = second_while_first_is_open(
        db,
        lambda session: filled.extend(fulfilment.fill_backorders(session)),
        lambda: (
            order(client, empty.b.headers, {"product_id": CHEAP, "quantity": 2}),
            order(client, empty.b.headers, {"product_id": CHEAP, "quantity": 1}),
        ),
    )
    assert filled == [waiting]
    assert_problem(two, 409, "insufficient-stock")
    placed(one, "delivered")
    assert len(revealed(client, empty.a.headers, waiting)) == 5
    assert available(client, empty.b.headers, CHEAP) == 0
    assert_consistent(db)


@pytest.mark.live  # concurrent transactions: real commits
def test_a_backorder_placed_during_a_fill_waits_for_the_next(
    client: httpx.Client, empty: Shop, db: Database, vault: Vault
) -> None:
    waiting = _waiting_and_restocked(client, empty, db, vault)
    filled: list[str] = []
    response = second_while_first_is_open(
        db,
        lambda session: filled.extend(fulfilment.fill_backorders(session)),
        lambda: backorder(client, empty.b.headers, 3),
    )
    assert filled == [waiting]
    newcomer = placed(response, "pending")
    assert promised(db, CHEAP) == 3
    assert available(client, empty.a.headers, CHEAP) == 1  # not set aside: it was there before
    assert_consistent(db)
    _, delivered = restock(db, vault, CHEAP, 2)
    assert delivered == [newcomer["id"]]
    assert_consistent(db)


@pytest.mark.live  # concurrent transactions: real commits
def test_two_fillers_at_once_deliver_each_backorder_once(
    client: httpx.Client, empty: Shop, db: Database, vault: Vault
) -> None:
    waiting = _waiting_and_restocked(client, empty, db, vault)

    def fill() -> list[str]:
        with db.session() as session:
            return fulfilment.fill_backorders(session)

    first: list[str] = []
    second = second_while_first_is_open(
        db, lambda session: first.extend(fulfilment.fill_backorders(session)), fill
    )
    assert first == [waiting] and second == []
    assert len(revealed(client, empty.a.headers, waiting)) == 5
    assert available_codes(db) == 20 + 1
    assert money(client, empty.a.headers) == (_left(5 * CHEAP_PRICE_MINOR), "0.00")
    assert_consistent(db)


@pytest.fixture
def postgres_only(database_url: str) -> None:
    if database_url.startswith("sqlite"):
        pytest.skip("SQLite runs one write transaction at a time")


@pytest.mark.live  # concurrent transactions: real commits
def test_two_orders_racing_for_the_last_free_code_leave_the_promise_intact(
    postgres_only: None, client: httpx.Client, empty: Shop, db: Database, vault: Vault
) -> None:
    waiting = _waiting_and_restocked(client, empty, db, vault)  # 6 in stock, 5 promised
    with db.read_session() as session:
        partner = partners.get_partner(session, empty.a.id)

    def first(session: Session) -> None:  # an order of one code, not yet committed
        priced = orders.price_items(
            session, partner, [orders.ItemRequest(quantity=1, pointer="#", product_id=CHEAP)]
        )
        orders.place_order(session, partner, priced, None)

    response = second_while_first_is_open(
        db, first, lambda: order(client, empty.b.headers, {"product_id": CHEAP, "quantity": 1})
    )
    # The backorder still finds the five codes it was promised...
    with db.session() as session:
        assert fulfilment.fill_backorders(session) == [waiting]
    # ...because only one of the two orders could have the one free code.
    assert_problem(response, 409, "insufficient-stock")
    assert_consistent(db)


@pytest.mark.live  # concurrent transactions: real commits
def test_a_new_backorder_and_the_fill_of_an_older_one_do_not_deadlock(
    postgres_only: None,
    client: httpx.Client,
    empty: Shop,
    db: Database,
    vault: Vault,
    caplog: pytest.LogCaptureFixture,
) -> None:
    first = placed(backorder(client, empty.b.headers, 2), "pending")["id"]
    second = placed(backorder(client, empty.a.headers, 2), "pending")["id"]
    factories.load_codes(db, vault, CHEAP, 4)
    with db.read_session() as session:
        b = partners.get_partner(session, empty.b.id)

    def fill() -> list[str]:
        with db.session() as session:
            return fulfilment.fill_backorders(session)

    # Three things at once, as in production: partner b places a backorder of OTHER (its
    # wallet and hold are locked until it commits); the import's fill delivers b's first
    # order (locking CHEAP's row, then waiting for b's hold); partner a backorders CHEAP.
    with ThreadPoolExecutor(2) as pool, db.session() as session:
        item = orders.ItemRequest(quantity=1, pointer="#", product_id=OTHER)
        priced = orders.price_items(session, b, [item])
        deadline = utcnow() + timedelta(hours=1)
        orders.place_order(session, b, priced, None, backorder_until=deadline)
        session.flush()
        filling = pool.submit(fill)
        wait_for_lock_waiters(db, 1, [filling])
        placing = pool.submit(backorder, client, empty.a.headers, 3)
        wait_for_lock_waiters(db, 2, [filling, placing])
    # b's backorder committed: the fill goes on to a's order, whose hold a's new backorder
    # holds while it waits for CHEAP's row, which the fill holds.
    response = placing.result(timeout=60)
    filled = filling.result(timeout=60)
    assert placed(response, "pending")["waiting_for"] == "stock"
    assert filled == [first, second]
    assert_consistent(db)
    # The order API retries a deadlock victim, so the partner only sees a slow answer; but a
    # deadlock there was (and, had PostgreSQL picked the fill as its victim, the import's fill
    # or the worker's pass would have failed instead).
    retried = [r.getMessage() for r in caplog.records if r.name == "codeshelf.idempotency"]
    assert retried == []


@pytest.mark.live  # concurrent transactions: real commits
def test_a_stock_import_whose_fill_meets_a_new_backorder_still_delivers(
    postgres_only: None,
    client: httpx.Client,
    empty: Shop,
    db: Database,
    database_url: str,
    tmp_path: Path,
) -> None:
    older = placed(backorder(client, empty.a.headers, 2), "pending")["id"]
    with db.read_session() as session:
        b = partners.get_partner(session, empty.b.id)
    two_products = {
        "items": [{"product_id": OTHER, "quantity": 1}, {"product_id": CHEAP, "quantity": 1}],
        "allow_backorder": True,
    }
    with ThreadPoolExecutor(2) as pool, db.session() as session:
        # Partner b is placing a backorder of OTHER (OTHER's row is locked until it commits).
        item = orders.ItemRequest(quantity=1, pointer="#", product_id=OTHER)
        priced = orders.price_items(session, b, [item])
        orders.place_order(session, b, priced, None, backorder_until=utcnow() + timedelta(hours=1))
        session.flush()
        # Partner a's next backorder holds its money, then waits for OTHER's row.
        placing = pool.submit(order, client, empty.a.headers, two_products)
        wait_for_lock_waiters(db, 1, [placing])
        # The operator imports CHEAP: its fill locks CHEAP's row, then waits for a's hold.
        importing = pool.submit(import_with_cli, database_url, tmp_path, CHEAP, 2)
        wait_for_lock_waiters(db, 2, [placing, importing])
    # b commits; a's backorder now wants CHEAP's row, which the fill holds.
    placed(placing.result(timeout=60), "pending")
    _, result = importing.result(timeout=60)
    assert f"backorders delivered: {older}" in result.stderr
    assert status_of(client, empty.a.headers, older) == "delivered"
    assert_consistent(db)


# --- a race of many --------------------------------------------------------------------------

FIRST_IN_LINE = 4  # backorders of 3 codes, placed before the race
RACERS = 6  # backorders of 2 codes, placed during it
ROUNDS = 5  # imports of 4 codes each, each followed by a fill, during it


def test_backorders_placed_while_stock_arrives_are_filled_whole_and_in_order(
    live_server: LiveServer, empty: Shop, db: Database, vault: Vault
) -> None:
    """20 codes arrive for 24 wanted: the 4 orders placed before the race get theirs first,
    then 4 of the 6 placed during it; each whole, each code once, the books balanced."""
    headers_of: dict[str, dict[str, str]] = {}
    size: dict[str, int] = {}
    partners_headers = [empty.a.headers, empty.b.headers]
    with httpx.Client(base_url=live_server.url, timeout=120) as http:
        for index in range(FIRST_IN_LINE):
            headers = partners_headers[index % 2]
            oid = placed(backorder(http, headers, 3), "pending")["id"]
            headers_of[oid], size[oid] = headers, 3
    first_in_line = list(headers_of)
    start = threading.Barrier(RACERS + 1)

    def racer(index: int) -> tuple[int, httpx.Response]:
        with httpx.Client(base_url=live_server.url, timeout=120) as http:
            start.wait()
            return index, backorder(http, partners_headers[index % 2], 2)

    def importer() -> None:
        start.wait()
        for _ in range(ROUNDS):
            restock(db, vault, CHEAP, 4)  # every path locks products, codes, money in one order

    with ThreadPoolExecutor(RACERS + 1) as pool:
        racing = [pool.submit(racer, index) for index in range(RACERS)]
        importing = pool.submit(importer)
        responses = [future.result(timeout=120) for future in racing]
        importing.result(timeout=120)
    with db.session() as session:  # what the worker's next pass does
        fulfilment.fill_backorders(session)

    racers = []
    for index, response in responses:
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["status"] in ("pending", "delivered"), body
        headers_of[body["id"]], size[body["id"]] = partners_headers[index % 2], 2
        racers.append(body["id"])

    delivered_codes: list[str] = []
    delivered_at: dict[str, datetime] = {}
    with httpx.Client(base_url=live_server.url, timeout=60) as http:
        final = {oid: get_order(http, headers, oid) for oid, headers in headers_of.items()}
        status = {oid: body["status"] for oid, body in final.items()}
        assert set(status.values()) <= {"pending", "delivered"}
        for oid, headers in headers_of.items():
            if status[oid] == "delivered":
                codes = revealed(http, headers, oid)
                assert len(codes) == size[oid]  # whole
                delivered_codes += codes
                delivered_at[oid] = parse_time(final[oid]["delivered_at"])
            else:  # or nothing
                problem = http.get(f"/api/v1/orders/{oid}/codes", headers=headers)
                assert_problem(problem, 409, "codes-not-ready")
        assert available(http, empty.a.headers, CHEAP) == 0
        # Money: each partner paid for what it got, and holds what still waits.
        for headers in partners_headers:
            mine = [oid for oid, h in headers_of.items() if h is headers]
            spent = sum(size[o] for o in mine if status[o] == "delivered") * CHEAP_PRICE_MINOR
            held = sum(size[o] for o in mine if status[o] == "pending") * CHEAP_PRICE_MINOR
            assert money(http, headers) == (_left(spent + held), usd(held))

    # All 20 codes went out, each once.
    assert len(delivered_codes) == len(set(delivered_codes)) == ROUNDS * 4
    # First come, first served: the orders waiting before the race got theirs, in order, and
    # before any order placed during it; then 4 of the 6 newcomers (8 codes were left).
    assert all(status[oid] == "delivered" for oid in first_in_line)
    in_line = [delivered_at[oid] for oid in first_in_line]
    assert in_line == sorted(in_line)
    assert all(delivered_at[oid] > in_line[-1] for oid in racers if oid in delivered_at)
    assert sum(status[oid] == "delivered" for oid in racers) == 4
    assert promised(db, CHEAP) == 2 * (RACERS - 4)
    assert_consistent(db)
