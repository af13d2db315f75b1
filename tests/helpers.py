"""Small helpers for API tests."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import func, select

from codeshelf.db import Database
from codeshelf.orders.models import Order
from codeshelf.stock.models import AVAILABLE, Code


def order(
    client: httpx.Client,
    headers: dict[str, str],
    body: dict[str, Any] | None = None,
    key: str | None = None,
) -> httpx.Response:
    payload = body if body is not None else {"product_id": "psn-us-50", "quantity": 1}
    return client.post(
        "/api/v1/orders",
        json=payload,
        headers={**headers, "Idempotency-Key": key or str(uuid.uuid4())},
    )


def balance(client: httpx.Client, headers: dict[str, str], currency: str = "USD") -> str:
    response = client.get("/api/v1/balance", headers=headers)
    assert response.status_code == 200
    amounts = {row["currency"]: row["amount"] for row in response.json()["data"]}
    return amounts.get(currency, "0.00")


def available_codes(db: Database) -> int:
    with db.read_session() as session:
        return session.scalar(select(func.count()).where(Code.state == AVAILABLE)) or 0


def order_count(db: Database) -> int:
    with db.read_session() as session:
        return session.scalar(select(func.count()).select_from(Order)) or 0


def assert_problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"].endswith(slug), body["type"]
    assert body["title"] and body["detail"]
    return body
