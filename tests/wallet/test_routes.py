"""GET /balance and GET /ledger."""

from __future__ import annotations

import httpx

from codeshelf.kit.db import Database
from tests.fixtures import factories
from tests.fixtures.factories import Shop
from tests.fixtures.http import order


def test_balance_is_per_currency(client: httpx.Client, shop: Shop, db: Database) -> None:
    factories.deposit(db, shop.a.id, "250000", "JPY")
    data = client.get("/api/v1/balance", headers=shop.a.headers).json()["data"]
    assert data == [
        {"amount": "250000", "currency": "JPY"},
        {"amount": "1000.00", "currency": "USD"},
    ]


def test_the_ledger_shows_a_running_balance(client: httpx.Client, shop: Shop, db: Database) -> None:
    placed = [order(client, shop.a.headers).json()["id"] for _ in range(3)]
    factories.deposit(db, shop.a.id, "10.05")
    entries = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/v1/ledger", params=params, headers=shop.a.headers).json()
        entries += page["data"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert [e["type"] for e in entries] == ["deposit", "order", "order", "order", "deposit"]
    assert [e["amount"]["amount"] for e in entries] == [
        "1000.00",
        "-46.50",
        "-46.50",
        "-46.50",
        "10.05",
    ]
    assert [e["balance_after"]["amount"] for e in entries] == [
        "1000.00",
        "953.50",
        "907.00",
        "860.50",
        "870.55",
    ]
    assert [e["order_id"] for e in entries[1:4]] == placed
    assert all(e["reference"] for e in (entries[0], entries[-1]))
    usd_only = client.get("/api/v1/ledger", params={"currency": "usd"}, headers=shop.a.headers)
    assert len(usd_only.json()["data"]) == 5
    bad = client.get("/api/v1/ledger", params={"currency": "XXQ"}, headers=shop.a.headers)
    assert bad.status_code == 422
