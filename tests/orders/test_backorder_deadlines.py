"""Deadlines and queue places of held orders: a late backorder is never delivered, a retry
replays its order after the deadline, an order approved after review queues behind the
backorders already waiting."""

from __future__ import annotations

import time
from datetime import timedelta

import httpx
import pytest

from codeshelf.kit.clock import utcnow
from codeshelf.kit.db import Database
from codeshelf.kit.vault import Vault
from codeshelf.orders.service import fulfilment
from tests.fixtures import factories
from tests.fixtures.backorders import (
    CHEAP,
    add_empty_products,
    assert_consistent,
    backorder,
    get_order,
    placed,
    restock,
)
from tests.fixtures.claims import operator_headers
from tests.fixtures.factories import Shop
from tests.fixtures.http import order


@pytest.fixture
def empty(shop: Shop, db: Database) -> Shop:
    add_empty_products(db)
    return shop


def _set_review_limit(database_url: str, partner_id: str, over: int) -> None:
    result = factories.run_cli(
        database_url, "partner", "limits", partner_id, "--quantity-over", str(over)
    )
    assert result.exit_code == 0, result.stderr


def test_a_retry_after_the_deadline_replays_the_order(client: httpx.Client, empty: Shop) -> None:
    deadline = utcnow() + timedelta(seconds=1)
    body = {
        "product_id": CHEAP,
        "quantity": 2,
        "allow_backorder": True,
        "backorder_until": deadline.isoformat(),
    }
    first = placed(order(client, empty.a.headers, body, key="retry-me"), "pending")
    time.sleep(max(0.0, (deadline - utcnow()).total_seconds()) + 0.1)  # let the deadline pass
    # The partner never saw the answer and retries: the deadline is in the past now, but the
    # stored order is replayed, not judged again.
    retry = order(client, empty.a.headers, body, key="retry-me")
    assert retry.status_code == 201, retry.text
    assert retry.json()["id"] == first["id"]
    assert retry.headers["Idempotent-Replayed"] == "true"
    fresh = order(client, empty.a.headers, body)  # a new request with that deadline is refused
    assert fresh.status_code == 422


def test_a_late_backorder_is_expired_not_delivered_by_an_import(
    client: httpx.Client, db: Database, vault: Vault, empty: Shop
) -> None:
    waiting = placed(backorder(client, empty.a.headers, 2), "pending")
    with db.session() as session:  # the worker lagged: the deadline passed, nobody expired it
        fulfilment.fill_backorders(session, utcnow() + timedelta(hours=73))
    assert get_order(client, empty.a.headers, waiting["id"])["status"] == "pending"
    factories.load_codes(db, vault, CHEAP, 2)
    with db.session() as session:
        expired, filled = fulfilment.tick(session, utcnow() + timedelta(hours=73))
    assert (expired, filled) == ([waiting["id"]], [])
    late = get_order(client, empty.a.headers, waiting["id"])
    assert late["status"] == "failed" and late["failure_reason"] == "backorder_expired"
    assert_consistent(db)


def test_an_order_under_review_expires_at_its_backorder_deadline(
    client: httpx.Client, db: Database, database_url: str, empty: Shop
) -> None:
    _set_review_limit(database_url, empty.a.id, 1)
    held = placed(backorder(client, empty.a.headers, 2), "pending")
    assert held["review_required"] is True
    with db.session() as session:
        assert fulfilment.expire_backorders(session, utcnow() + timedelta(hours=71)) == []
    with db.session() as session:
        assert fulfilment.expire_backorders(session, utcnow() + timedelta(hours=73)) == [held["id"]]
    gone = get_order(client, empty.a.headers, held["id"])
    assert gone["status"] == "failed" and gone["failure_reason"] == "backorder_expired"
    assert_consistent(db)


def test_approving_after_the_partners_deadline_fails_the_order(
    client: httpx.Client, db: Database, vault: Vault, database_url: str, empty: Shop
) -> None:
    _set_review_limit(database_url, empty.a.id, 1)
    deadline = (utcnow() + timedelta(seconds=2)).isoformat()
    held = placed(backorder(client, empty.a.headers, 2, backorder_until=deadline), "pending")
    factories.load_codes(db, vault, CHEAP, 2)
    with db.session() as session:  # the operator decides after the partner stopped waiting
        decided = fulfilment.decide_review(
            session,
            held["id"],
            approve=True,
            actor="operator:alice",
            reason="ok",
            now=utcnow() + timedelta(minutes=1),
        )
        assert decided.failure_reason == "backorder_expired"
    assert get_order(client, empty.a.headers, held["id"])["status"] == "failed"
    assert_consistent(db)


def test_an_order_approved_after_review_queues_behind_backorders_already_waiting(
    client: httpx.Client, db: Database, vault: Vault, database_url: str, empty: Shop
) -> None:
    factories.deposit(db, empty.b.id, "1000.00")
    _set_review_limit(database_url, empty.a.id, 1)
    reviewed = placed(backorder(client, empty.a.headers, 2), "pending")  # the older order...
    waiting = placed(backorder(client, empty.b.headers, 2), "pending")  # ...waits for review
    approved = client.post(
        f"/api/v1/admin/orders/{reviewed['id']}/review",
        json={"decision": "approve", "reason": "known customer"},
        headers=operator_headers(db),
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["waiting_for"] == "stock"
    _codes, delivered = restock(db, vault, CHEAP, 2)
    assert delivered == [waiting["id"]]  # B waited for stock first
    _codes, delivered = restock(db, vault, CHEAP, 2)
    assert delivered == [reviewed["id"]]
    assert_consistent(db)
