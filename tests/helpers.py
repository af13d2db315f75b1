"""Small helpers for API tests."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

import httpx
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from codeshelf.kit.db import Database
from codeshelf.orders.models import Order
from codeshelf.stock.models import Code, CodeState


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
        return session.scalar(select(func.count()).where(Code.state == CodeState.AVAILABLE)) or 0


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


T = TypeVar("T")


def wait_until_blocked(db: Database, future: Future[Any]) -> None:
    """Return once another transaction waits on a lock we hold (PostgreSQL), or has finished.

    SQLite's writers queue at BEGIN IMMEDIATE: there the other simply runs after our commit.
    """
    if db.is_sqlite:
        time.sleep(0.05)
        return
    deadline = time.monotonic() + 10
    query = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    while time.monotonic() < deadline and not future.done():
        with db.engine.connect() as connection:
            if connection.scalar(query):
                return
        time.sleep(0.01)
    assert future.done(), "the second transaction neither finished nor waited on our lock"


def second_while_first_is_open(
    db: Database, first: Callable[[Session], object], second: Callable[[], T]
) -> T:
    """Run ``first`` in an open transaction, start ``second``, commit; return ``second``'s."""
    with ThreadPoolExecutor(1) as pool:
        with db.session() as session:
            first(session)
            session.flush()  # written, not yet committed: what a racing request runs into
            future = pool.submit(second)
            wait_until_blocked(db, future)
        return future.result(timeout=60)
