"""The operator API's deposits under four eyes: an operator key is the person, so a deposit one
key asked for above the threshold is decided with another operator's key."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from codeshelf.invariants import wallet_checks
from codeshelf.kit.db import Database
from codeshelf.kit.settings import Settings
from tests.fixtures import factories
from tests.fixtures.claims import OperatorKeyHandle, issue_operator_key
from tests.fixtures.servers import serve

ADMIN = "/api/v1/admin"


@pytest.fixture
def api(settings: Settings, db: Database) -> Iterator[httpx.Client]:
    four_eyes = settings.model_copy(update={"deposit_approval_over": "USD 5000.00"})
    with serve(four_eyes, db) as client:
        yield client


def deposit(
    api: httpx.Client, key: OperatorKeyHandle, partner_id: str, amount: str, reference: str
) -> httpx.Response:
    body = {"amount": amount, "currency": "USD", "reference": reference}
    return api.post(f"{ADMIN}/partners/{partner_id}/deposits", json=body, headers=key.headers)


def balance(api: httpx.Client, partner: factories.PartnerHandle) -> list[dict[str, str]]:
    response = api.get("/api/v1/balance", headers=partner.headers)
    assert response.status_code == 200, response.text
    data: list[dict[str, str]] = response.json()["data"]
    return data


def problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["type"].endswith("/" + slug), body
    return body


def usd(amount: str) -> list[dict[str, str]]:
    return [{"amount": amount, "currency": "USD"}]


def test_at_the_threshold_201_then_200_and_above_it_202(
    api: httpx.Client, db: Database, shop: factories.Shop
) -> None:
    alice = issue_operator_key(db, "alice")
    first = deposit(api, alice, shop.a.id, "5000.00", "WIRE-1")
    assert first.status_code == 201, first.text
    assert first.json()["status"] == "credited" and first.json()["balance"] == usd("6000.00")[0]
    again = deposit(api, alice, shop.a.id, "5000.00", "WIRE-1")
    assert again.status_code == 200 and again.json()["created"] is False
    assert again.json()["transaction_id"] == first.json()["transaction_id"]

    pending = deposit(api, alice, shop.a.id, "5000.01", "WIRE-2")
    assert pending.status_code == 202, pending.text
    body = pending.json()
    assert (body["status"], body["transaction_id"], body["balance"]) == ("pending", None, None)
    assert body["request"]["requested_by"] == "operator:alice"
    assert body["request"]["partner_name"] == "Acme Games"
    assert deposit(api, alice, shop.a.id, "5000.01", "WIRE-2").status_code == 202
    assert balance(api, shop.a) == usd("6000.00")


def test_a_second_key_approves_and_the_first_cannot(
    api: httpx.Client, db: Database, shop: factories.Shop
) -> None:
    alice, bob = issue_operator_key(db, "alice"), issue_operator_key(db, "bob")
    request_id = deposit(api, alice, shop.a.id, "9000.00", "WIRE-9").json()["request"]["id"]
    queue = api.get(f"{ADMIN}/deposits", params={"status": "pending"}, headers=bob.headers)
    assert [r["id"] for r in queue.json()["data"]] == [request_id]

    own = api.post(f"{ADMIN}/deposits/{request_id}/approve", headers=alice.headers)
    assert "second person" in problem(own, 403, "four-eyes")["detail"]
    # Another key of the same operator is the same person.
    alice_again = issue_operator_key(db, "alice")
    problem(
        api.post(f"{ADMIN}/deposits/{request_id}/approve", headers=alice_again.headers),
        403,
        "four-eyes",
    )
    assert balance(api, shop.a) == usd("1000.00")

    approved = api.post(f"{ADMIN}/deposits/{request_id}/approve", headers=bob.headers)
    assert approved.status_code == 200, approved.text
    assert approved.json()["balance"] == usd("10000.00")[0]
    assert approved.json()["request"]["decided_by"] == "operator:bob"
    assert balance(api, shop.a) == usd("10000.00")
    problem(
        api.post(f"{ADMIN}/deposits/{request_id}/approve", headers=bob.headers),
        409,
        "deposit-already-decided",
    )
    shown = api.get(f"{ADMIN}/deposits/{request_id}", headers=alice.headers).json()
    assert (
        shown["status"] == "approved"
        and shown["transaction_id"] == approved.json()["transaction_id"]
    )
    assert api.get(
        f"{ADMIN}/deposits", params={"status": "pending"}, headers=bob.headers
    ).json() == {"data": []}


def test_a_declined_deposit_credits_nothing_and_its_reference_stays_used(
    api: httpx.Client, db: Database, shop: factories.Shop
) -> None:
    alice, bob = issue_operator_key(db, "alice"), issue_operator_key(db, "bob")
    request_id = deposit(api, alice, shop.a.id, "9000.00", "WIRE-9").json()["request"]["id"]
    url = f"{ADMIN}/deposits/{request_id}/decline"
    problem(api.post(url, json={"note": ""}, headers=bob.headers), 422, "validation-error")
    problem(api.post(url, json={"note": "mine"}, headers=alice.headers), 403, "four-eyes")
    declined = api.post(url, json={"note": "no such wire"}, headers=bob.headers)
    assert declined.status_code == 200, declined.text
    assert (declined.json()["status"], declined.json()["note"]) == ("declined", "no such wire")
    problem(deposit(api, alice, shop.a.id, "9000.00", "WIRE-9"), 409, "deposit-reference-conflict")
    problem(deposit(api, bob, shop.a.id, "10.00", "WIRE-9"), 409, "deposit-reference-conflict")
    assert balance(api, shop.a) == usd("1000.00")
    with db.read_session() as session:
        assert wallet_checks(session) == []


def test_bad_input_and_unknown_things_are_problems(
    api: httpx.Client, db: Database, shop: factories.Shop
) -> None:
    alice = issue_operator_key(db, "alice")
    problem(deposit(api, alice, "ptr_nope", "10.00", "W"), 404, "partner-not-found")
    for amount, pointer in (("10.001", "#/amount"), ("0", "#/amount"), ("1e5", "#/amount")):
        body = problem(deposit(api, alice, shop.a.id, amount, "W"), 422, "validation-error")
        assert body["errors"][0]["pointer"] == pointer, body
    bad_currency = api.post(
        f"{ADMIN}/partners/{shop.a.id}/deposits",
        json={"amount": "10.00", "currency": "XXQ", "reference": "W"},
        headers=alice.headers,
    )
    assert problem(bad_currency, 422, "validation-error")["errors"][0]["pointer"] == "#/currency"
    problem(
        api.post(f"{ADMIN}/deposits/dep_nope/approve", headers=alice.headers),
        404,
        "deposit-request-not-found",
    )
    # A partner's key does not find the operator's deposits at all.
    outsider = api.post(
        f"{ADMIN}/partners/{shop.a.id}/deposits",
        json={"amount": "10.00", "currency": "USD", "reference": "W"},
        headers=shop.a.headers,
    )
    problem(outsider, 404, "not-found")
    assert balance(api, shop.a) == usd("1000.00")


def test_the_operator_openapi_documents_the_deposit_routes(api: httpx.Client, db: Database) -> None:
    alice = issue_operator_key(db, "alice")
    paths = api.get(f"{ADMIN}/openapi.json", headers=alice.headers).json()["paths"]
    assert set(paths[f"{ADMIN}/partners/{{partner_id}}/deposits"]["post"]["responses"]) >= {
        "200", "201", "202", "404", "409", "422",
    }  # fmt: skip
    for path in ("/deposits/{request_id}/approve", "/deposits/{request_id}/decline"):
        assert paths[ADMIN + path]["post"]["summary"]
        assert "four-eyes" in paths[ADMIN + path]["post"]["responses"]["403"]["description"]
    assert not [
        p
        for p in api.get("/api/v1/openapi.json").json()["paths"]
        if "deposits" in p and "admin" in p
    ]


@pytest.mark.live
def test_two_operators_approving_at_once_credit_once(
    api: httpx.Client, db: Database, shop: factories.Shop
) -> None:
    alice = issue_operator_key(db, "alice")
    request_id = deposit(api, alice, shop.a.id, "9000.00", "WIRE-9").json()["request"]["id"]
    keys = [issue_operator_key(db, f"op{n}") for n in range(4)]
    start = threading.Barrier(len(keys))

    def approve(key: OperatorKeyHandle) -> int:
        start.wait()
        return api.post(f"{ADMIN}/deposits/{request_id}/approve", headers=key.headers).status_code

    with ThreadPoolExecutor(len(keys)) as pool:
        statuses = sorted(pool.map(approve, keys))
    assert statuses == [200, 409, 409, 409]
    assert balance(api, shop.a) == usd("10000.00")
    with db.read_session() as session:
        assert wallet_checks(session) == []
