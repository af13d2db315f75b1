"""Crashes between steps: a failure half-way through an order leaves nothing behind, and a retry
with the same Idempotency-Key buys exactly once, whenever the failure struck."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from codeshelf.idempotency import service as idempotency
from codeshelf.idempotency.models import IdempotencyRecord, KeyState
from codeshelf.kit.clock import utcnow
from codeshelf.kit.db import Database
from codeshelf.stock import service as stock_service
from codeshelf.wallet import service as wallet_service
from tests.fixtures.adversarial import ONE, assert_clean_problem, post_order, request, violations
from tests.fixtures.factories import Shop
from tests.fixtures.http import available_codes, order_count
from tests.fixtures.servers import LiveServer

BODY = json.dumps({**ONE, "quantity": 2}).encode()


class CrashError(RuntimeError):
    """Stands in for a lost database connection or a killed worker."""


def _after(original: Callable[..., Any]) -> Callable[..., Any]:
    """``original`` runs (its writes happen), then the 'process' dies."""

    def crashed(*args: Any, **kwargs: Any) -> Any:
        original(*args, **kwargs)
        raise CrashError("server closed the connection unexpectedly")

    return crashed


def _dead_process_releases_nothing(*_: object) -> None:
    """A killed worker runs no cleanup."""


def _nothing_happened(live_server: LiveServer, shop: Shop, db: Database) -> None:
    assert order_count(db) == 0
    assert available_codes(db) == 20
    balance = request(live_server.url, "GET", "/api/v1/balance", headers=shop.a.headers)
    assert balance.json()["data"] == [{"amount": "1000.00", "currency": "USD"}]
    assert violations(db) == []


def _bought_once(live_server: LiveServer, shop: Shop, db: Database, key: str) -> None:
    placed = post_order(live_server.url, shop.a.headers, BODY, key=key)
    assert placed.status_code == 201, placed.text
    replay = post_order(live_server.url, shop.a.headers, BODY, key=key)
    assert replay.headers.get("idempotent-replayed") == "true"
    assert replay.json()["id"] == placed.json()["id"]
    assert order_count(db) == 1
    assert available_codes(db) == 18
    balance = request(live_server.url, "GET", "/api/v1/balance", headers=shop.a.headers)
    assert balance.json()["data"] == [{"amount": "907.00", "currency": "USD"}]
    assert violations(db) == []


@pytest.mark.parametrize(
    ("module", "step"),
    [
        (stock_service, "allocate"),  # codes claimed, then the crash
        (wallet_service, "debit_for_order"),  # codes claimed and wallet debited, then the crash
        (idempotency, "_complete"),  # everything done and the response stored, then the crash
    ],
    ids=["after-allocation", "after-debit", "after-storing-the-response"],
)
def test_a_crash_mid_order_undoes_everything_and_frees_the_key(
    live_server: LiveServer,
    shop: Shop,
    db: Database,
    monkeypatch: pytest.MonkeyPatch,
    module: Any,
    step: str,
) -> None:
    with monkeypatch.context() as patch:
        patch.setattr(module, step, _after(getattr(module, step)))
        crashed = post_order(live_server.url, shop.a.headers, BODY, key="crash-mid-order")
    assert_clean_problem(crashed, 500)
    _nothing_happened(live_server, shop, db)
    # The failed request released its key: the retry need not wait for the lock to expire.
    _bought_once(live_server, shop, db, "crash-mid-order")


def test_a_worker_killed_after_claiming_its_key_blocks_retries_briefly_then_buys_once(
    live_server: LiveServer, shop: Shop, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A kill -9 between the claim (committed) and the order (rolled back by the database):
    # nothing releases the key, so its lock has to expire.
    with monkeypatch.context() as patch:
        patch.setattr(idempotency, "_release", _dead_process_releases_nothing)
        patch.setattr(wallet_service, "debit_for_order", _after(wallet_service.debit_for_order))
        died = post_order(live_server.url, shop.a.headers, BODY, key="killed")
    assert_clean_problem(died, 500)
    with db.read_session() as session:
        record = session.scalars(select(IdempotencyRecord)).one()
        assert record.state == KeyState.PROCESSING and record.response_body is None
    _nothing_happened(live_server, shop, db)

    retry = post_order(live_server.url, shop.a.headers, BODY, key="killed")
    assert_clean_problem(retry, 409)
    assert retry.json()["type"].endswith("/idempotency-key-in-use")
    assert retry.headers["retry-after"] == "1"
    other = post_order(
        live_server.url, shop.a.headers, json.dumps(ONE).encode(), key="killed"
    )  # a different body is still refused as a reuse, never run
    assert_clean_problem(other, 422)
    _nothing_happened(live_server, shop, db)

    with db.session() as session:
        session.execute(
            update(IdempotencyRecord).values(locked_until=utcnow() - timedelta(seconds=1))
        )
    _bought_once(live_server, shop, db, "killed")
