"""A retry never buys twice (IETF Idempotency-Key draft)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select, update

from codeshelf.idempotency import service as idempotency
from codeshelf.idempotency.models import IdempotencyRecord
from codeshelf.kit.clock import utcnow
from codeshelf.kit.db import Database
from codeshelf.kit.settings import Settings
from codeshelf.kit.vault import Vault
from codeshelf.partners import service as partners
from tests.fixtures import factories
from tests.fixtures.factories import Shop
from tests.fixtures.http import assert_problem, available_codes, balance, order, order_count

BODY = {"product_id": "psn-us-50", "quantity": 2}


def test_a_retry_replays_the_original_response(
    client: httpx.Client, shop: Shop, db: Database
) -> None:
    first = order(client, shop.a.headers, BODY, key="retry-1")
    second = order(client, shop.a.headers, BODY, key="retry-1")
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert order_count(db) == 1
    assert balance(client, shop.a.headers) == "907.00"


def test_key_order_and_whitespace_in_the_body_do_not_matter(
    client: httpx.Client, shop: Shop
) -> None:
    headers = {**shop.a.headers, "Idempotency-Key": "k-json", "Content-Type": "application/json"}
    first = client.post(
        "/api/v1/orders", content='{"product_id":"psn-us-50","quantity":2}', headers=headers
    )
    again = client.post(
        "/api/v1/orders", content='{ "quantity": 2,\n "product_id": "psn-us-50" }', headers=headers
    )
    assert again.headers.get("idempotent-replayed") == "true"
    assert again.json()["id"] == first.json()["id"]


def test_the_same_key_with_another_body_is_422(
    client: httpx.Client, shop: Shop, db: Database
) -> None:
    order(client, shop.a.headers, BODY, key="reuse")
    response = order(
        client, shop.a.headers, {"product_id": "psn-us-50", "quantity": 3}, key="reuse"
    )
    assert_problem(response, 422, "idempotency-key-reused")
    assert order_count(db) == 1


def test_a_key_is_required(client: httpx.Client, shop: Shop) -> None:
    response = client.post("/api/v1/orders", json=BODY, headers=shop.a.headers)
    assert_problem(response, 400, "idempotency-key-missing")


def test_the_key_may_come_from_the_body(client: httpx.Client, shop: Shop, db: Database) -> None:
    body = {**BODY, "client_order_id": "ORDER-1042", "idempotency_key": "8d91b0"}
    first = client.post("/api/v1/orders", json=body, headers=shop.a.headers)
    again = client.post("/api/v1/orders", json=body, headers=shop.a.headers)
    assert first.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    # the header form of the same key names the same request
    same = client.post(
        "/api/v1/orders", json=body, headers={**shop.a.headers, "Idempotency-Key": "8d91b0"}
    )
    assert same.headers["idempotent-replayed"] == "true"
    assert order_count(db) == 1


def test_header_and_body_keys_must_agree(client: httpx.Client, shop: Shop) -> None:
    response = client.post(
        "/api/v1/orders",
        json={**BODY, "idempotency_key": "one"},
        headers={**shop.a.headers, "Idempotency-Key": "two"},
    )
    assert_problem(response, 400, "idempotency-key-mismatch")


def test_a_quoted_structured_field_key_equals_the_bare_token(
    client: httpx.Client, shop: Shop
) -> None:
    quoted = order(client, shop.a.headers, BODY, key='"8e03978e-40d5-43e8-bc93-6894a57f9324"')
    bare = order(client, shop.a.headers, BODY, key="8e03978e-40d5-43e8-bc93-6894a57f9324")
    assert bare.headers["idempotent-replayed"] == "true"
    assert bare.json()["id"] == quoted.json()["id"]


@pytest.mark.parametrize("key", ['"unterminated', "x" * 256, "has space", "caf\u00e9"])
def test_malformed_keys_are_400(client: httpx.Client, shop: Shop, key: str) -> None:
    headers: dict[str, str | bytes] = {**shop.a.headers, "Idempotency-Key": key.encode()}
    response = client.post("/api/v1/orders", json=BODY, headers=headers)
    assert_problem(response, 400, "idempotency-key-invalid")


def test_business_refusals_are_stored_and_replayed(
    client: httpx.Client, shop: Shop, db: Database, vault: Vault
) -> None:
    big = {"product_id": "psn-us-50", "quantity": 25}
    first = order(client, shop.a.headers, big, key="too-many")
    assert_problem(first, 409, "insufficient-stock")
    factories.load_codes(db, vault, "psn-us-50", 10)  # now there would be enough
    again = order(client, shop.a.headers, big, key="too-many")
    assert_problem(again, 409, "insufficient-stock")
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert available_codes(db) == 30


def test_validation_refusals_are_not_stored(
    client: httpx.Client, shop: Shop, db: Database, vault: Vault
) -> None:
    body = {"product_id": "psn-us-100", "quantity": 1}
    assert_problem(order(client, shop.a.headers, body, key="early"), 422, "unknown-product")
    factories.add_product(db, "psn-us-100", face="100", price="93.00")
    factories.load_codes(db, vault, "psn-us-100", 1)
    retry = order(client, shop.a.headers, body, key="early")
    assert retry.status_code == 201
    assert "idempotent-replayed" not in retry.headers


def test_keys_are_scoped_per_partner(client: httpx.Client, shop: Shop, db: Database) -> None:
    a = order(client, shop.a.headers, BODY, key="shared-key")
    b = order(client, shop.b.headers, BODY, key="shared-key")
    assert a.status_code == b.status_code == 201
    assert "idempotent-replayed" not in b.headers
    assert a.json()["id"] != b.json()["id"]
    assert order_count(db) == 2


def _partner_id(db: Database, public_id: str) -> int:
    with db.read_session() as session:
        return partners.get_partner(session, public_id).id


def _fingerprint(body: dict[str, object]) -> str:
    from codeshelf.orders.schemas import OrderCreate

    return idempotency.fingerprint(
        "POST", "/api/v1/orders", OrderCreate.model_validate(body).fingerprint_payload()
    )


def test_a_request_still_running_with_the_key_gets_409(
    client: httpx.Client, shop: Shop, db: Database, settings: Settings
) -> None:
    in_flight = idempotency._claim(
        db, settings, _partner_id(db, shop.a.id), "busy", _fingerprint(BODY)
    )
    assert isinstance(in_flight, idempotency._Claim)
    response = order(client, shop.a.headers, BODY, key="busy")
    assert_problem(response, 409, "idempotency-key-in-use")
    assert response.headers["retry-after"] == "1"
    assert order_count(db) == 0


def test_a_crashed_request_releases_its_key_after_the_lock_expires(
    client: httpx.Client, shop: Shop, db: Database, settings: Settings
) -> None:
    crashed = idempotency._claim(
        db, settings, _partner_id(db, shop.a.id), "crash", _fingerprint(BODY)
    )
    assert isinstance(crashed, idempotency._Claim)
    with db.session() as session:
        session.execute(
            update(IdempotencyRecord).values(locked_until=utcnow() - timedelta(seconds=1))
        )
    retry = order(client, shop.a.headers, BODY, key="crash")
    assert retry.status_code == 201
    # The crashed request, were it to wake up now, cannot complete: its claim was taken over.
    with pytest.raises(idempotency.KeyInUseError), db.session() as session:
        idempotency._complete(session, crashed, 201, "{}")
    assert order_count(db) == 1
    assert balance(client, shop.a.headers) == "907.00"


def test_keys_are_kept_24_hours_then_may_be_reused(
    client: httpx.Client, shop: Shop, db: Database
) -> None:
    order(client, shop.a.headers, BODY, key="old")
    with db.read_session() as session:
        record = session.scalars(select(IdempotencyRecord)).one()
    assert record.expires_at - record.created_at >= timedelta(hours=24)
    with db.session() as session:
        session.execute(
            update(IdempotencyRecord).values(expires_at=utcnow() - timedelta(seconds=1))
        )
    fresh = order(client, shop.a.headers, {"product_id": "psn-us-50", "quantity": 1}, key="old")
    assert fresh.status_code == 201
    assert "idempotent-replayed" not in fresh.headers
    assert order_count(db) == 2


def test_concurrent_retries_with_one_key_buy_once(
    live_server: object, shop: Shop, db: Database
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    url = live_server.url  # type: ignore[attr-defined]
    key = str(uuid.uuid4())

    def attempt(_: int) -> httpx.Response:
        with httpx.Client(base_url=url, timeout=60) as http:
            return order(http, shop.a.headers, BODY, key=key)

    with ThreadPoolExecutor(12) as pool:
        responses = list(pool.map(attempt, range(12)))
    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) <= {201, 409}, statuses
    created = {r.json()["id"] for r in responses if r.status_code == 201}
    assert len(created) == 1
    assert order_count(db) == 1
    with httpx.Client(base_url=url) as http:
        assert balance(http, shop.a.headers) == "907.00"
