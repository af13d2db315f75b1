"""Helpers for the backorder tests: placing backorders, reading money, events and promises back
through the API, restocking the way the operator's CLI does, and the consistency checks."""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import Future
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select, text
from typer.testing import Result

from codeshelf.catalog.models import Product
from codeshelf.invariants import check_all
from codeshelf.kit.db import Database
from codeshelf.kit.vault import Vault
from codeshelf.orders.service import fulfilment
from tests import factories
from tests.helpers import order

CHEAP = "psn-us-10"  # 9.30 USD, starts with no stock: what the backorder tests wait for
CHEAP_PRICE_MINOR = 930
OTHER = "psn-us-20"  # 18.60 USD, starts with no stock too
OTHER_PRICE_MINOR = 1860
DELAYED = (
    "Your order is delayed while we restock. It will be delivered as soon as the codes arrive, "
    "and you will not be charged if it cannot be completed."
)
READY = "Your code is ready."
FAILED = "We could not complete your order, and you have not been charged."


def add_empty_products(db: Database) -> None:
    """CHEAP and OTHER, both out of stock."""
    factories.add_product(db, CHEAP, face="10", price="9.30")
    factories.add_product(db, OTHER, face="20", price="18.60")


def usd(minor: int) -> str:
    return f"{minor // 100}.{minor % 100:02d}"


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value)


def assert_consistent(db: Database) -> None:
    """Orders, money and stock agree with each other (what `codeshelf ledger check` checks)."""
    with db.read_session() as session:
        problems = check_all(session)
    assert problems == []


def backorder(
    client: httpx.Client,
    headers: dict[str, str],
    quantity: int,
    sku: str = CHEAP,
    **extra: Any,
) -> httpx.Response:
    body = {"product_id": sku, "quantity": quantity, "allow_backorder": True, **extra}
    return order(client, headers, body)


def placed(response: httpx.Response, status: str) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    assert body["status"] == status, body
    return body


def get_order(client: httpx.Client, headers: dict[str, str], order_id: str) -> dict[str, Any]:
    response = client.get(f"/api/v1/orders/{order_id}", headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def status_of(client: httpx.Client, headers: dict[str, str], order_id: str) -> str:
    status: str = get_order(client, headers, order_id)["status"]
    return status


def money(client: httpx.Client, headers: dict[str, str]) -> tuple[str, str]:
    """(available, held) in USD, as GET /balance shows them ("0.00" when there is no account)."""
    response = client.get("/api/v1/balance", headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()

    def usd_of(rows: list[dict[str, str]]) -> str:
        return next((row["amount"] for row in rows if row["currency"] == "USD"), "0.00")

    return usd_of(body["data"]), usd_of(body["held"])


def ledger(client: httpx.Client, headers: dict[str, str]) -> list[tuple[str, str, str | None]]:
    """The wallet statement: (type, amount, order id) per entry, oldest first."""
    response = client.get("/api/v1/ledger", headers=headers)
    assert response.status_code == 200, response.text
    return [
        (row["type"], row["amount"]["amount"], row["order_id"]) for row in response.json()["data"]
    ]


def events(
    client: httpx.Client, headers: dict[str, str], order_id: str | None = None
) -> list[dict[str, Any]]:
    """The partner's events feed (oldest first), only this order's when one is named."""
    response = client.get("/api/v1/events", params={"limit": 500}, headers=headers)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    if order_id is None:
        return data
    return [event for event in data if event["payload"].get("order_id") == order_id]


def event_trail(
    client: httpx.Client, headers: dict[str, str], order_id: str
) -> list[tuple[str, str]]:
    """(event type, order status in its payload) for each event of the order."""
    return [(e["type"], e["payload"]["status"]) for e in events(client, headers, order_id)]


def revealed(client: httpx.Client, headers: dict[str, str], order_id: str) -> list[str]:
    response = client.get(f"/api/v1/orders/{order_id}/codes", headers=headers)
    assert response.status_code == 200, response.text
    return [row["code"] for row in response.json()["codes"]]


def available(client: httpx.Client, headers: dict[str, str], sku: str) -> int:
    """What /inventory offers this partner of ``sku`` now."""
    response = client.get("/api/v1/inventory", headers=headers)
    assert response.status_code == 200, response.text
    [line] = [row for row in response.json()["data"] if row["product_id"] == sku]
    count: int = line["quantity_available"]
    return count


def promised(db: Database, sku: str) -> int:
    """products.backordered: codes of ``sku`` promised to waiting backorders."""
    with db.read_session() as session:
        value = session.scalar(select(Product.backordered).where(Product.sku == sku))
    assert value is not None
    return value


def restock(db: Database, vault: Vault, sku: str, count: int) -> tuple[list[str], list[str]]:
    """Import ``count`` codes, then serve the waiting backorders in a transaction of its own, as
    `codeshelf stock import` does. Returns the codes and the ids of the orders delivered."""
    codes = factories.load_codes(db, vault, sku, count)
    with db.session() as session:
        delivered = fulfilment.fill_backorders(session)
    return codes, delivered


def import_with_cli(
    database_url: str, directory: Path, sku: str, count: int
) -> tuple[list[str], Result]:
    """`codeshelf stock import FILE --sku SKU --batch …` with ``count`` fresh codes."""
    codes = [factories.random_code() for _ in range(count)]
    path = directory / f"{sku}-{len(list(directory.glob('*.txt')))}.txt"
    path.write_text("".join(f"{code}\n" for code in codes))
    result = factories.run_cli(
        database_url, "stock", "import", str(path), "--sku", sku, "--batch", path.stem
    )
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return codes, result


def lock_waiters(db: Database) -> int:
    """PostgreSQL sessions of this database waiting on a lock."""
    with db.engine.connect() as connection:
        count = connection.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )
    return int(count or 0)


def wait_for_lock_waiters(db: Database, count: int, futures: Sequence[Future[Any]]) -> None:
    """Return once ``count`` transactions wait on locks (PostgreSQL), or one of ``futures`` has
    finished (it did not need to wait: the caller judges its result).

    Like tests.helpers.wait_until_blocked, for interleavings of more than two transactions.
    """
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if lock_waiters(db) >= count or any(future.done() for future in futures):
            return
        time.sleep(0.01)
    raise AssertionError(f"{count} transactions never waited on locks together")
