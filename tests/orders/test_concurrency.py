"""A code is delivered at most once, even with many clients racing for the last codes."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from sqlalchemy import event, func, select

from codeshelf.invariants import check_all
from codeshelf.kit.db import Database
from codeshelf.stock.models import Code, CodeState
from tests.fixtures.factories import Shop
from tests.fixtures.http import balance, order
from tests.fixtures.servers import LiveServer

CLIENTS_PER_PARTNER = 18  # 36 clients for the shop's 20 codes


def test_racing_clients_get_each_code_once(
    live_server: LiveServer, shop: Shop, db: Database
) -> None:
    start = threading.Barrier(2 * CLIENTS_PER_PARTNER)

    def buyer(headers: dict[str, str]) -> httpx.Response:
        with httpx.Client(base_url=live_server.url, timeout=120) as http:
            start.wait()
            return order(http, headers)

    partners = [shop.a.headers] * CLIENTS_PER_PARTNER + [shop.b.headers] * CLIENTS_PER_PARTNER
    with ThreadPoolExecutor(len(partners)) as pool:
        responses = list(pool.map(buyer, partners))

    outcome = Counter(response.status_code for response in responses)
    assert outcome == {201: 20, 409: 2 * CLIENTS_PER_PARTNER - 20}, outcome
    for response in responses:
        if response.status_code == 409:
            assert response.json()["type"].endswith("insufficient-stock")

    delivered: list[str] = []
    with httpx.Client(base_url=live_server.url, timeout=60) as http:
        for response, headers in zip(responses, partners, strict=True):
            if response.status_code == 201:
                codes = http.get(response.json()["codes_url"], headers=headers).json()["codes"]
                delivered += [row["code"] for row in codes]
        assert sorted(delivered) == sorted(shop.codes)  # every code out, each exactly once
        wins = Counter(
            "a" if index < CLIENTS_PER_PARTNER else "b"
            for index, response in enumerate(responses)
            if response.status_code == 201
        )
        assert balance(http, shop.a.headers) == _left(wins["a"])
        assert balance(http, shop.b.headers) == _left(wins["b"])

    with db.read_session() as session:
        assert session.scalar(select(func.count()).where(Code.state == CodeState.DELIVERED)) == 20
        assert check_all(session) == []


def _left(codes_bought: int) -> str:
    cents = 100_000 - 4650 * codes_bought
    return f"{cents // 100}.{cents % 100:02d}"


def test_one_partner_racing_itself_never_overdraws(
    live_server: LiveServer, shop: Shop, db: Database
) -> None:
    # 1000.00 buys 21 codes at 46.50; 20 are in stock; orders of 3 codes each (139.50):
    # at most 7 can be paid, stock allows 6 (18 codes), and the wallet never goes negative.
    start = threading.Barrier(12)

    def buyer(_: int) -> httpx.Response:
        with httpx.Client(base_url=live_server.url, timeout=120) as http:
            start.wait()
            return order(http, shop.a.headers, {"product_id": "psn-us-50", "quantity": 3})

    with ThreadPoolExecutor(12) as pool:
        responses = list(pool.map(buyer, range(12)))
    won = sum(response.status_code == 201 for response in responses)
    assert 1 <= won <= 6
    assert {response.status_code for response in responses} <= {201, 409}
    with db.read_session() as session:
        assert check_all(session) == []
        delivered = session.scalar(select(func.count()).where(Code.state == CodeState.DELIVERED))
    assert delivered == 3 * won
    with httpx.Client(base_url=live_server.url) as http:
        assert balance(http, shop.a.headers) == _left(3 * won)


def test_an_order_locks_its_partners_wallet_only_for_its_last_statements(
    client: httpx.Client, shop: Shop, db: Database
) -> None:
    # Every order of one partner waits for that partner's wallet row from another order's debit
    # to its commit: the debit comes after the codes, the events and the rest, and only storing
    # the response follows it (SQLite adds the postings, PostgreSQL writes them in the debit).
    executed: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "SAVEPOINT" not in statement:  # the test's own transaction, standing in for commits
            executed.append(" ".join(statement.split())[:60])

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        placed = order(client, shop.a.headers)
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    assert placed.status_code == 201, placed.text
    [debit] = [i for i, sql in enumerate(executed) if "UPDATE ledger_accounts" in sql]
    after = [sql.split(" (")[0].split(" SET")[0] for sql in executed[debit + 1 :]]
    postings = [] if db.engine.dialect.name == "postgresql" else ["INSERT INTO ledger_postings"]
    assert after == [*postings, "UPDATE idempotency_keys"]
