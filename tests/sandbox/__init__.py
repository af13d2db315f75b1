"""Sandbox (cs_test_ keys) tests, and what they share."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select

from codeshelf.catalog.models import Product
from codeshelf.invariants import check_all
from codeshelf.kit.db import Database
from codeshelf.partners import service as partners
from codeshelf.partners.models import KeyMode
from codeshelf.stock import service as stock
from codeshelf.stock.models import Code
from tests.factories import PartnerHandle


def issue_sandbox_key(db: Database, live_partner_id: str) -> PartnerHandle:
    """A cs_test_ key for the live partner's sandbox twin (created on first use)."""
    with db.session() as session:
        issued = partners.create_key(session, live_partner_id, KeyMode.TEST)
    assert issued.secret.startswith("cs_test_")
    return PartnerHandle(issued.partner.public_id, issued.secret, issued.api_key.public_id)


def get_json(client: httpx.Client, path: str, headers: dict[str, str], **params: Any) -> Any:
    response = client.get(path, headers=headers, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def top_up(client: httpx.Client, headers: dict[str, str], amount: str) -> dict[str, Any]:
    response = client.post(
        "/api/v1/sandbox/deposits", json={"amount": amount, "currency": "USD"}, headers=headers
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def event_types(client: httpx.Client, headers: dict[str, str]) -> list[str]:
    return [e["type"] for e in get_json(client, "/api/v1/events", headers)["data"]]


def events_of(client: httpx.Client, headers: dict[str, str], order_id: str) -> list[str]:
    """The types of the events about one order, in order."""
    return [
        e["type"]
        for e in get_json(client, "/api/v1/events", headers)["data"]
        if e["payload"].get("order_id") == order_id
    ]


def held(client: httpx.Client, headers: dict[str, str]) -> str:
    rows = get_json(client, "/api/v1/balance", headers)["held"]
    return next((row["amount"] for row in rows if row["currency"] == "USD"), "0.00")


def ids(rows: list[dict[str, Any]]) -> set[str]:
    return {row["id"] for row in rows}


def live_stock(db: Database) -> tuple[Any, ...]:
    """Everything a sandbox order must leave alone: per-product stock counts and backorder
    promises, and every code's state and owner."""
    with db.read_session() as session:
        summary = stock.summary(session)
        promised = sorted(session.execute(select(Product.sku, Product.backordered)))
        codes = sorted(
            session.execute(select(Code.id, Code.state, Code.order_item_id)),
            key=lambda row: row[0],
        )
    return (summary, promised, codes)


def assert_books_balance(db: Database) -> None:
    """Orders, money and stock agree with each other."""
    with db.read_session() as session:
        assert check_all(session) == []
