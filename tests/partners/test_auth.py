"""Authentication, and one partner never seeing another's anything."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from codeshelf.kit.db import Database
from codeshelf.kit.tokens import hash_key
from codeshelf.partners import service as partners
from codeshelf.partners.models import ApiKey
from tests.fixtures.factories import Shop
from tests.fixtures.http import assert_problem, order

ROUTES = ["/api/v1/inventory", "/api/v1/balance", "/api/v1/orders", "/api/v1/ledger"]


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer cs_live_wrong", "Basic dXNlcjpwYXNz", "bearer two words"],
)
def test_missing_or_bad_keys_are_401_with_a_challenge(
    client: httpx.Client, shop: Shop, route: str, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = client.get(route, headers=headers)
    assert_problem(response, 401, "unauthorized")
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_keys_are_stored_only_as_hashes(db: Database, shop: Shop) -> None:
    with db.read_session() as session:
        stored = session.scalars(select(ApiKey)).all()
    assert len(stored) == 2
    for row in stored:
        assert shop.a.key not in (row.key_hash, row.prefix)
        assert len(row.key_hash) == 64
    assert hash_key(shop.a.key) in {row.key_hash for row in stored}


def test_rotation_several_keys_then_revoke(client: httpx.Client, shop: Shop, db: Database) -> None:
    with db.session() as session:
        second = partners.create_key(session, shop.a.id)
    new_headers = {"Authorization": f"Bearer {second.secret}"}
    assert client.get("/api/v1/balance", headers=new_headers).status_code == 200
    assert client.get("/api/v1/balance", headers=shop.a.headers).status_code == 200
    with db.session() as session:
        partners.revoke_key(session, shop.a.id, shop.a.key_id)
    assert_problem(client.get("/api/v1/balance", headers=shop.a.headers), 401, "unauthorized")
    assert client.get("/api/v1/balance", headers=new_headers).status_code == 200


def test_another_partners_order_is_404_not_403(client: httpx.Client, shop: Shop) -> None:
    mine = order(client, shop.a.headers).json()
    for path in (f"/api/v1/orders/{mine['id']}", f"/api/v1/orders/{mine['id']}/codes"):
        theirs = client.get(path, headers=shop.b.headers)
        missing = client.get(path.replace(mine["id"], "ord_doesnotexist"), headers=shop.b.headers)
        assert_problem(theirs, 404, "order-not-found")
        assert theirs.json()["title"] == missing.json()["title"]
        assert theirs.status_code == missing.status_code
    assert client.get("/api/v1/orders", headers=shop.b.headers).json()["data"] == []
    ledger_b = client.get("/api/v1/ledger", headers=shop.b.headers).json()["data"]
    assert all(entry["order_id"] is None for entry in ledger_b)


def test_a_partner_cannot_replay_another_partners_idempotent_response(
    client: httpx.Client, shop: Shop
) -> None:
    mine = order(client, shop.a.headers, key="guessable-1")
    theirs = order(client, shop.b.headers, key="guessable-1")
    assert theirs.json()["id"] != mine.json()["id"]
    assert "idempotent-replayed" not in theirs.headers
