"""Races, mostly PostgreSQL's: two transactions creating the same row, a reference or a key at
once, and orders that see each other's uncommitted work.

Where the outcome depends on the interleaving, the first transaction is held open by the test and
the second is let run until PostgreSQL reports it waiting on a lock (SQLite's writers queue up at
BEGIN IMMEDIATE, so there the second simply waits its turn).
"""

from __future__ import annotations

import contextlib
import json
import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from codeshelf.idempotency import service as idempotency
from codeshelf.idempotency.models import IdempotencyRecord
from codeshelf.invariants import stock_checks, wallet_checks
from codeshelf.kit.db import Database
from codeshelf.kit.money import Money
from codeshelf.kit.settings import Settings
from codeshelf.kit.vault import Vault
from codeshelf.orders.schemas import OrderCreate
from codeshelf.partners import service as partners
from codeshelf.partners.models import Partner
from codeshelf.stock import service as stock
from codeshelf.wallet import service as wallet
from codeshelf.wallet.models import Account, AccountKind
from tests.fixtures import factories
from tests.fixtures.adversarial import ONE, assert_clean_problem, post_order, request, violations
from tests.fixtures.factories import Shop
from tests.fixtures.http import (
    available_codes,
    order_count,
    second_while_first_is_open,
    wait_until_blocked,
)
from tests.fixtures.servers import LiveServer


def _partner(session: Session, public_id: str) -> Partner:
    return partners.get_partner(session, public_id)


def _balance(live_server: LiveServer, headers: dict[str, str]) -> dict[str, str]:
    rows = request(live_server.url, "GET", "/api/v1/balance", headers=headers).json()["data"]
    return {row["currency"]: row["amount"] for row in rows}


# --- Deposits ------------------------------------------------------------------------------------


@pytest.mark.live  # concurrent transactions: real commits
def test_a_deposit_reference_in_flight_twice_credits_once_and_says_so(
    shop: Shop, db: Database
) -> None:
    money = Money.parse("250.00", "USD")

    def second() -> bool:
        with db.session() as session:
            return wallet.deposit(session, _partner(session, shop.a.id), money, "WIRE-42").created

    def first(session: Session) -> None:
        assert wallet.deposit(session, _partner(session, shop.a.id), money, "WIRE-42").created

    assert second_while_first_is_open(db, first, second) is False
    with db.read_session() as session:
        assert wallet.balances(session, _partner(session, shop.a.id).id) == [
            Money.parse("1250.00", "USD")
        ]
        assert wallet_checks(session) == []


@pytest.mark.live  # concurrent transactions: real commits
def test_first_deposits_of_two_partners_in_a_new_currency_both_land(
    shop: Shop, db: Database
) -> None:
    # Both create their EUR wallet and race to create the shared funding:EUR account.
    def deposit(session: Session, partner_id: str, reference: str) -> Any:
        money = Money.parse("80.00", "EUR")
        return wallet.deposit(session, _partner(session, partner_id), money, reference)

    def second() -> Any:
        with db.session() as session:
            return deposit(session, shop.b.id, "EUR-B").created

    def first(session: Session) -> None:
        deposit(session, shop.a.id, "EUR-A")

    assert second_while_first_is_open(db, first, second)
    with db.read_session() as session:
        for partner_id in (shop.a.id, shop.b.id):
            balances = wallet.balances(session, _partner(session, partner_id).id)
            assert Money.parse("80.00", "EUR") in balances
        funding = session.scalar(select(func.count()).where(Account.code == "funding:EUR"))
        assert funding == 1
        assert wallet_checks(session) == []


# --- Accounts created by the first order ---------------------------------------------------------


@pytest.fixture
def euro_shop(shop: Shop, db: Database, vault: Vault) -> Shop:
    """The shop, plus psn-de-50 priced in EUR with 10 codes, and 500.00 EUR for partner A only."""
    factories.add_product(db, "psn-de-50", region="DE", face="50", currency="EUR", price="45.00")
    factories.load_codes(db, vault, "psn-de-50", 10)
    factories.deposit(db, shop.a.id, "500.00", "EUR")
    return shop


EURO = json.dumps({"product_id": "psn-de-50", "quantity": 1}).encode()


def test_the_first_order_in_a_currency_while_its_sales_account_is_being_created(
    live_server: LiveServer, euro_shop: Shop, db: Database
) -> None:
    def second() -> httpx.Response:
        return post_order(live_server.url, euro_shop.a.headers, EURO)

    def first(session: Session) -> None:
        wallet.account(
            session, AccountKind.SALES, "EUR"
        )  # another order, creating sales:EUR right now

    placed = second_while_first_is_open(db, first, second)
    assert placed.status_code == 201, placed.text
    with db.read_session() as session:
        assert session.scalar(select(func.count()).where(Account.code == "sales:EUR")) == 1
    assert _balance(live_server, euro_shop.a.headers)["EUR"] == "455.00"
    assert violations(db) == []


def test_concurrent_orders_from_a_wallet_that_does_not_exist_yet(
    live_server: LiveServer, euro_shop: Shop, db: Database
) -> None:
    # B has no EUR wallet: every racing order creates it, finds it empty and is refused.
    start = threading.Barrier(6)

    def buy(_: int) -> httpx.Response:
        start.wait()
        return post_order(live_server.url, euro_shop.b.headers, EURO)

    with ThreadPoolExecutor(6) as pool:
        responses = list(pool.map(buy, range(6)))
    for response in responses:
        assert_clean_problem(response, 402)
        assert response.json()["balance"] == {"amount": "0.00", "currency": "EUR"}
    assert order_count(db) == 0
    assert available_codes(db) == 30
    assert _balance(live_server, euro_shop.b.headers) == {"USD": "1000.00"}
    assert violations(db) == []


# --- client_order_id and Idempotency-Key -----------------------------------------------------


def test_one_client_order_id_raced_under_different_keys_makes_one_order(
    live_server: LiveServer, shop: Shop, db: Database
) -> None:
    start = threading.Barrier(8)
    body = json.dumps({**ONE, "client_order_id": "PO-RACE"}).encode()

    def buy(_: int) -> httpx.Response:
        start.wait()
        return post_order(live_server.url, shop.a.headers, body)

    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(buy, range(8)))
    outcome = Counter(response.status_code for response in responses)
    assert outcome == {201: 1, 409: 7}, outcome
    winner = next(r.json()["id"] for r in responses if r.status_code == 201)
    for response in responses:
        if response.status_code == 409:
            problem = assert_clean_problem(response, 409)
            assert problem["type"].endswith("/duplicate-client-order-id")
            assert problem["existing_order_id"] == winner
    assert order_count(db) == 1
    assert _balance(live_server, shop.a.headers) == {"USD": "953.50"}
    assert violations(db) == []


def test_one_key_raced_with_different_bodies_buys_at_most_once(
    live_server: LiveServer, shop: Shop, db: Database
) -> None:
    start = threading.Barrier(8)
    key = str(uuid.uuid4())

    def buy(quantity: int) -> httpx.Response:
        start.wait()
        body = json.dumps({**ONE, "quantity": quantity}).encode()
        return post_order(live_server.url, shop.a.headers, body, key=key)

    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(buy, range(1, 9)))
    created = [r for r in responses if r.status_code == 201]
    assert len(created) == 1, [r.status_code for r in responses]
    for response in responses:
        if response.status_code != 201:
            problem = assert_clean_problem(response, 409, 422)
            assert problem["type"].endswith(("/idempotency-key-in-use", "/idempotency-key-reused"))
    bought = created[0].json()["items"][0]["quantity"]
    assert order_count(db) == 1
    assert available_codes(db) == 20 - bought
    left = 100_000 - 4650 * bought
    assert _balance(live_server, shop.a.headers) == {"USD": f"{left // 100}.{left % 100:02d}"}


# --- Stock ---------------------------------------------------------------------------------------


def test_an_order_doomed_for_money_does_not_make_others_fail_for_stock(
    live_server: LiveServer, shop: Shop, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    broke = factories.add_partner(db, "Broke Resale")  # no money at all
    allocated, release = threading.Event(), threading.Event()
    real_debit = wallet.debit_for_order

    def slow_debit(session: Session, partner: Partner, *args: Any) -> Any:
        if partner.public_id == broke.id:
            allocated.set()
            release.wait(timeout=20)
        return real_debit(session, partner, *args)

    monkeypatch.setattr(wallet, "debit_for_order", slow_debit)
    everything = json.dumps({**ONE, "quantity": 20}).encode()
    with ThreadPoolExecutor(2) as pool:
        doomed = pool.submit(post_order, live_server.url, broke.headers, everything)
        assert allocated.wait(timeout=20)
        honest = pool.submit(post_order, live_server.url, shop.b.headers, json.dumps(ONE).encode())
        if not db.is_sqlite:  # PostgreSQL answers at once; SQLite waits for the doomed order
            with contextlib.suppress(TimeoutError):
                honest.result(timeout=2)
        release.set()
        assert_clean_problem(doomed.result(timeout=30), 402)
        response = honest.result(timeout=30)
    assert response.status_code == 201, response.text
    assert available_codes(db) == 19


@pytest.mark.live  # concurrent transactions: real commits
def test_overlapping_imports_at_once_store_each_code_once_and_report_the_rest(
    shop: Shop, db: Database, vault: Vault
) -> None:
    fresh = [factories.random_code() for _ in range(4)]
    shared = fresh[:2]

    def load(session: Session, batch: str, codes: list[str]) -> stock.ImportReport:
        return stock.import_codes(
            session, vault, sku="psn-us-50", batch_reference=batch, lines=enumerate(codes, 1)
        )

    def second() -> stock.ImportReport:
        with db.session() as session:
            return load(session, "BATCH-2", [*shared, fresh[2]])

    def first(session: Session) -> None:
        load(session, "BATCH-1", [*shared, fresh[3]])

    report = second_while_first_is_open(db, first, second)
    assert report.imported == 1
    assert report.duplicates_in_stock.count == 2
    assert available_codes(db) == 20 + 4
    with db.read_session() as session:
        assert stock_checks(session) == []


def test_a_retry_racing_the_release_of_its_key_is_not_a_server_error(
    live_server: LiveServer, shop: Shop, db: Database, settings: Settings
) -> None:
    partner_id = _partner_id(db, shop.a.id)
    body = json.dumps(ONE).encode()
    fingerprint = idempotency.fingerprint("POST", "/api/v1/orders", _payload(body))
    claim = idempotency._claim(db, settings, partner_id, "released", fingerprint)
    assert not isinstance(claim, idempotency.StoredResponse)
    record = select(IdempotencyRecord).where(IdempotencyRecord.key == "released")

    def first(session: Session) -> None:
        # The failing first attempt, caught between holding its key and releasing it.
        session.execute(record.with_for_update()).one()

    def second() -> httpx.Response:
        return post_order(live_server.url, shop.a.headers, body, key="released")

    with ThreadPoolExecutor(1) as pool:
        with db.session() as session:
            first(session)
            retry = pool.submit(second)
            wait_until_blocked(db, retry)
            session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.key == "released"))
        response = retry.result(timeout=30)
    if response.status_code != 201:
        assert_clean_problem(response, 409)
    assert violations(db) == []


def _partner_id(db: Database, public_id: str) -> int:
    with db.read_session() as session:
        return _partner(session, public_id).id


def _payload(body: bytes) -> dict[str, object]:
    return OrderCreate.model_validate_json(body).fingerprint_payload()
