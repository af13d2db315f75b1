"""Polling fallbacks on orders: ``updated_since``, and the purge of expired idempotency keys."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import func, select, update

from codeshelf.idempotency import service as idempotency
from codeshelf.idempotency.models import IdempotencyRecord
from codeshelf.kit.db import Database
from codeshelf.orders.models import Order
from tests.fixtures import factories
from tests.fixtures.http import order


def test_updated_since_lists_only_orders_changed_since(
    client: httpx.Client, db: Database, shop: factories.Shop
) -> None:
    old = order(client, shop.a.headers).json()
    new = order(client, shop.a.headers).json()
    with db.session() as session:
        session.execute(
            update(Order)
            .where(Order.public_id == old["id"])
            .values(updated_at=datetime.now(UTC) - timedelta(days=2))
        )
    since = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    listed = client.get("/api/v1/orders", params={"updated_since": since}, headers=shop.a.headers)
    assert listed.status_code == 200, listed.text
    assert [o["id"] for o in listed.json()["data"]] == [new["id"]]
    assert listed.json()["data"][0]["customer_message"] == "Your code is ready."
    naive = client.get(
        "/api/v1/orders", params={"updated_since": "2026-01-01T00:00:00"}, headers=shop.a.headers
    )
    assert naive.status_code == 422


def test_expired_idempotency_keys_are_purged_and_live_ones_kept(
    client: httpx.Client, db: Database, shop: factories.Shop
) -> None:
    order(client, shop.a.headers, key="kept-key")
    order(client, shop.a.headers, key="old-key")
    with db.session() as session:
        session.execute(
            update(IdempotencyRecord)
            .where(IdempotencyRecord.key == "old-key")
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    with db.session() as session:
        assert idempotency.purge_expired(session, datetime.now(UTC)) == 1
    with db.read_session() as session:
        keys = session.scalars(select(IdempotencyRecord.key)).all()
        assert keys == ["kept-key"]
        assert session.scalar(select(func.count()).select_from(Order)) == 2


def test_a_time_past_what_utc_can_hold_is_a_422_not_a_500(
    client: httpx.Client, shop: factories.Shop
) -> None:
    answer = client.get(
        "/api/v1/orders",
        params={"updated_since": "9999-12-31T23:59:59-23:59"},
        headers=shop.a.headers,
    )
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
