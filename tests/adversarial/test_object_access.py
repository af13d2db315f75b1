"""OWASP API1/API3/API5/API8: one partner never sees or sets another's anything, a body cannot
set what the server owns, operator functions are not on the API, and errors give nothing away."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from codeshelf.audit.models import AuditEvent
from codeshelf.idempotency.models import IdempotencyRecord
from codeshelf.kit.db import Database
from codeshelf.orders import service as orders_service
from codeshelf.partners.models import ApiKey
from codeshelf.stock.models import Code
from tests.fixtures.adversarial import (
    ONE,
    ORDERS,
    assert_clean_problem,
    each,
    post_order,
    request,
    stored_keys,
    violations,
)
from tests.fixtures.factories import Shop
from tests.fixtures.http import available_codes, order_count


def _get(client: httpx.Client, path: str, headers: dict[str, str]) -> httpx.Response:
    return request(client, "GET", path, headers=headers)


def _place(client: httpx.Client, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    response = post_order(client, headers, json.dumps({**ONE, **body}).encode())
    assert response.status_code == 201, response.text
    placed: dict[str, Any] = response.json()
    return placed


def test_another_partners_order_is_invisible_through_every_door(
    client: httpx.Client, shop: Shop, db: Database
) -> None:
    mine = _place(client, shop.a.headers, quantity=2, client_order_id="SHARED-1")
    b = shop.b.headers
    for path in (f"{ORDERS}/{mine['id']}", f"{ORDERS}/{mine['id']}/codes"):
        theirs = _get(client, path, b)
        missing = _get(client, path.replace(mine["id"], "ord_00000000000000000000"), b)
        assert_clean_problem(theirs, 404)
        # Exactly as if it did not exist: same status, type, title and shape of detail.
        scrub = {**theirs.json(), "detail": None, "instance": None}
        assert scrub == {**missing.json(), "detail": None, "instance": None}
        assert "SHARED-1" not in theirs.text
    for query in ("", "?client_order_id=SHARED-1", "?status=delivered", "?limit=200"):
        assert _get(client, f"{ORDERS}{query}", b).json()["data"] == []
    ledger = _get(client, "/api/v1/ledger?limit=500", b).json()["data"]
    assert [entry["type"] for entry in ledger] == ["deposit"]
    assert _get(client, "/api/v1/balance", b).json()["data"][0]["amount"] == "1000.00"
    # B's attempts revealed nothing and were not recorded as a reveal.
    with db.read_session() as session:
        reveals = session.scalars(select(AuditEvent).where(AuditEvent.action == "codes.reveal"))
        assert [event.partner_public_id for event in reveals] == []


def test_a_client_order_id_is_private_to_its_partner(client: httpx.Client, shop: Shop) -> None:
    mine = _place(client, shop.a.headers, client_order_id="PO-7")
    theirs = post_order(
        client, shop.b.headers, json.dumps({**ONE, "client_order_id": "PO-7"}).encode()
    )
    assert theirs.status_code == 201, theirs.text  # not a duplicate, and no existing_order_id
    assert mine["id"] not in theirs.text
    again = post_order(
        client, shop.b.headers, json.dumps({**ONE, "client_order_id": "PO-7"}).encode()
    )
    problem = assert_clean_problem(again, 409)
    assert problem["existing_order_id"] == theirs.json()["id"] != mine["id"]


def test_a_crafted_cursor_cannot_page_into_another_partners_orders_or_ledger(
    client: httpx.Client, shop: Shop
) -> None:
    for _ in range(3):
        _place(client, shop.a.headers)
    b_order = _place(client, shop.b.headers)

    a_orders = _get(client, f"{ORDERS}?limit=10", shop.a.headers).json()["data"]
    a_entries = _get(client, "/api/v1/ledger?limit=10", shop.a.headers).json()["data"]
    crafted = (
        [
            base64.urlsafe_b64encode(str(n).encode()).decode().rstrip("=")
            for n in (0, 1, 2, 3, 10, 1000, 2**31, 2**62)
        ]
        + [row["id"] for row in a_orders]
        + [entry["id"] for entry in a_entries]
    )

    def check(cursor: str) -> None:
        for path in (f"{ORDERS}?cursor={cursor}&limit=200", f"/api/v1/ledger?cursor={cursor}"):
            response = _get(client, path, shop.b.headers)
            # another partner's ids, or anything this API did not issue, are not cursors
            assert response.status_code == 400, response.text
            assert response.json()["type"].endswith("invalid-cursor")

    each(crafted, check)
    own = _get(client, f"{ORDERS}?cursor={b_order['id']}", shop.b.headers)
    assert own.status_code == 200 and own.json()["data"] == []


def test_a_body_cannot_set_what_the_server_owns(
    client: httpx.Client, shop: Shop, db: Database
) -> None:
    owned: dict[str, Any] = {
        "status": "delivered",
        "partner_id": shop.b.id,
        "id": "ord_00000000000000000000",
        "price": {"amount": "0.01", "currency": "USD"},
        "unit_price": "0.01",
        "total": "0.01",
        "created_at": "2000-01-01T00:00:00Z",
        "delivered_at": "2000-01-01T00:00:00Z",
        "codes": ["AAAA-BBBB-CCCC"],
        "__proto__": {"status": "paid"},
        "Quantity": 5,
    }

    def check(field: str) -> None:
        for body, pointer in (
            ({**ONE, field: owned[field]}, f"#/{field}"),
            ({"items": [{**ONE, field: owned[field]}]}, f"#/items/0/{field}"),
        ):
            response = post_order(client, shop.a.headers, json.dumps(body).encode())
            problem = assert_clean_problem(response, 422)
            assert pointer in [error.get("pointer") for error in problem["errors"]]

    each(list(owned), check)
    assert order_count(db) == 0
    assert available_codes(db) == 20
    assert stored_keys(db) == 0


def test_a_line_that_contradicts_itself_is_refused(
    client: httpx.Client, shop: Shop, db: Database
) -> None:
    contradictions: list[dict[str, object]] = [
        {"region": "TR"},
        {"denomination": 100},
        {"currency": "JPY"},
        {"platform": "xbox"},
        {"region": "US", "denomination": 10},
    ]

    def check(extra: dict[str, object]) -> None:
        body = {"items": [{"product_id": "psn-us-50", "quantity": 1, **extra}]}
        response = post_order(client, shop.a.headers, json.dumps(body).encode())
        assert_clean_problem(response, 422)

    each(contradictions, check)
    assert order_count(db) == 0


def test_query_parameters_cannot_widen_what_a_partner_sees(
    client: httpx.Client, shop: Shop
) -> None:
    _place(client, shop.a.headers)
    for path in (
        f"{ORDERS}?partner_id={shop.a.id}",
        f"{ORDERS}?partner={shop.a.id}&all=true",
        f"/api/v1/ledger?partner_id={shop.a.id}&limit=500",
        f"/api/v1/balance?partner_id={shop.a.id}",
    ):
        seen = _get(client, path, shop.b.headers)
        assert seen.status_code == 200, seen.text
        assert shop.a.id not in seen.text
        for row in seen.json()["data"]:
            assert row.get("order_id") is None and "client_order_id" not in row


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # HTTP layer only
def test_an_api_key_counts_only_in_the_authorization_header(
    client: httpx.Client, shop: Shop
) -> None:
    key = shop.a.key

    def check(attempt: tuple[str, dict[str, str]]) -> None:
        path, headers = attempt
        response = _get(client, path, headers)
        assert_clean_problem(response, 401)
        assert key not in response.text

    each(
        [
            (f"/api/v1/balance?api_key={key}", {}),
            (f"/api/v1/balance?access_token={key}", {}),
            ("/api/v1/balance", {"X-API-Key": key}),
            ("/api/v1/balance", {"Cookie": f"api_key={key}; session={key}"}),
            ("/api/v1/balance", {"Proxy-Authorization": f"Bearer {key}"}),
        ],
        check,
    )


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # HTTP layer only
def test_operator_functions_are_not_on_the_partner_api(client: httpx.Client, shop: Shop) -> None:
    spec = _get(client, "/api/v1/openapi.json", {}).json()
    assert set(spec["paths"]) == {
        "/api/v1/inventory",
        "/api/v1/balance",
        "/api/v1/ledger",
        "/api/v1/orders",
        "/api/v1/orders/{order_id}",
        "/api/v1/orders/{order_id}/codes",
        "/api/v1/claims",
        "/api/v1/claims/{claim_id}",
        "/api/v1/claims/{claim_id}/evidence",
        "/api/v1/claims/{claim_id}/cancel",
        "/api/v1/claims/{claim_id}/remedy",
        "/api/v1/webhook-endpoints",
        "/api/v1/webhook-endpoints/{endpoint_id}",
        "/api/v1/webhook-endpoints/{endpoint_id}/rotate-secret",
        "/api/v1/webhook-endpoints/{endpoint_id}/enable",
        "/api/v1/webhook-endpoints/{endpoint_id}/deliveries",
        "/api/v1/events",
        "/api/v1/balance/alerts",
        "/api/v1/balance/alerts/{currency}",
        "/api/v1/reconciliation",
        # The sandbox's rehearsal tools answer 403 sandbox-only to a live key.
        "/api/v1/sandbox/deposits",
        "/api/v1/sandbox/restock",
        "/api/v1/sandbox/orders/{order_id}/review",
        "/api/v1/sandbox/webhooks/trigger",
    }
    both = {"/api/v1/orders", "/api/v1/claims", "/api/v1/webhook-endpoints"}
    for path, methods in spec["paths"].items():
        if path in both:
            expected = {"get", "post"}
        elif path == "/api/v1/webhook-endpoints/{endpoint_id}":
            expected = {"get", "delete"}
        elif path == "/api/v1/balance/alerts/{currency}":
            expected = {"put", "delete"}
        elif path.endswith(("/rotate-secret", "/enable")) or path.startswith(
            ("/api/v1/claims/{claim_id}/", "/api/v1/sandbox/")
        ):
            expected = {"post"}
        else:
            expected = {"get"}
        assert set(methods) == expected, path
    attempts = [
        ("POST", "/api/v1/partners"),
        ("POST", "/api/v1/deposits"),
        ("POST", "/api/v1/wallet/deposit"),
        ("POST", "/api/v1/products"),
        ("PUT", "/api/v1/prices/psn-us-50"),
        ("POST", "/api/v1/stock/import"),
        ("GET", "/api/v1/audit"),
        ("GET", "/api/v1/partners"),
        ("DELETE", f"{ORDERS}/ord_00000000000000000000"),
        ("PATCH", f"{ORDERS}/ord_00000000000000000000"),
        ("PUT", "/api/v1/balance"),
        ("GET", "/admin"),
        ("GET", "/api/v1/admin/claims"),
        ("POST", "/api/v1/admin/claims/clm_00000000000000000000/approve"),
        ("GET", "/api/v1/admin/openapi.json"),
        ("GET", "/debug"),
        ("GET", "/.env"),
        ("TRACE", "/api/v1/balance"),
    ]

    def check(attempt: tuple[str, str]) -> None:
        method, path = attempt
        response = request(
            client,
            method,
            path,
            headers={**shop.a.headers, "Content-Type": "application/json"},
            content=b'{"amount": "1000000.00", "currency": "USD"}',
        )
        assert_clean_problem(response, 404, 405)

    each(attempts, check)
    assert _get(client, "/api/v1/balance", shop.a.headers).json()["data"][0] == {
        "amount": "1000.00",
        "currency": "USD",
    }


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # HTTP layer only
def test_no_cross_origin_grant_is_made(client: httpx.Client, shop: Shop) -> None:
    origin = {"Origin": "https://evil.example"}
    plain = _get(client, "/api/v1/balance", {**shop.a.headers, **origin})
    preflight = request(
        client,
        "OPTIONS",
        ORDERS,
        headers={
            **origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, idempotency-key",
        },
    )
    assert_clean_problem(preflight, 405)
    for response in (plain, preflight):
        assert not any(name.startswith("access-control-") for name in response.headers)


def test_an_unexpected_error_gives_nothing_internal_away(
    client: httpx.Client, shop: Shop, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = f"SELECT key_hash FROM api_keys WHERE key = '{shop.a.key}'"

    def explode(*_: object, **__: object) -> None:
        raise RuntimeError(secret)

    monkeypatch.setattr(orders_service, "place_order", explode)
    response = post_order(client, shop.a.headers, json.dumps(ONE).encode())
    problem = assert_clean_problem(response, 500)
    assert set(problem) == {"type", "title", "status", "detail", "instance"}
    for leak in (secret, shop.a.key, "RuntimeError", "api_keys", "orders/service.py", "line "):
        assert leak not in response.text
    assert order_count(db) == 0


def test_codes_and_keys_are_at_rest_only_as_ciphertext_and_hashes(
    client: httpx.Client, shop: Shop, db: Database
) -> None:
    placed = _place(client, shop.a.headers, quantity=3)
    post_order(client, shop.a.headers, json.dumps({**ONE, "quantity": 99}).encode())
    revealed = _get(client, placed["codes_url"], shop.a.headers)
    assert revealed.headers["cache-control"] == "no-store"
    codes = [row["code"] for row in revealed.json()["codes"]]
    assert len(codes) == 3 and set(codes) <= set(shop.codes)
    with db.read_session() as session:
        blobs: list[str] = [
            repr(row.response_body) for row in session.scalars(select(IdempotencyRecord))
        ]
        blobs += [repr(vars(event)) for event in session.scalars(select(AuditEvent))]
        blobs += [
            repr((row.sealed, row.last4, row.fingerprint)) for row in session.scalars(select(Code))
        ]
        keys = [repr((row.key_hash, row.prefix)) for row in session.scalars(select(ApiKey))]
    assert len(blobs) > 20
    for code in shop.codes:
        compact = code.replace("-", "")
        for blob in blobs:
            assert code not in blob and compact not in blob and compact.encode().hex() not in blob
    for stored in keys:
        assert shop.a.key not in stored and shop.b.key not in stored
        assert shop.a.key[12:24] not in stored  # nothing of the secret part beyond the prefix
    assert violations(db) == []


def _number(public: str) -> int | None:
    """The integer an id or cursor carries, if it is nothing but a number in disguise."""
    try:
        decoded = base64.urlsafe_b64decode(public + "=" * (-len(public) % 4)).decode("latin-1")
    except ValueError:
        decoded = ""
    for text in (public.partition("_")[2], decoded):
        if text.isdigit():
            return int(text)
    return None


def test_ids_and_cursors_say_nothing_about_other_partners_activity(
    client: httpx.Client, shop: Shop
) -> None:
    _place(client, shop.a.headers)
    _place(client, shop.a.headers)  # nothing happens elsewhere between A's 1st and 2nd
    for _ in range(3):  # B's business, which A must not be able to measure
        _place(client, shop.b.headers)
    _place(client, shop.a.headers)
    ledger = _get(client, "/api/v1/ledger?limit=500", shop.a.headers).json()["data"]
    entry_ids = [entry["id"] for entry in ledger if entry["type"] == "order"]
    # The cursors after A's 1st, 2nd and 3rd order (the 1st is the last page: its last id).
    oldest = _get(client, f"{ORDERS}?limit=3", shop.a.headers).json()["data"][-1]["id"]
    cursors = [oldest] + [
        _get(client, f"{ORDERS}?limit={limit}", shop.a.headers).json()["next_cursor"]
        for limit in (2, 1)
    ]

    def inferred(values: list[str]) -> int | None:
        """What A would guess B did between A's 2nd and 3rd orders (None: ids are opaque)."""
        numbers = [number for number in map(_number, values) if number is not None]
        if len(numbers) != 3:
            return None
        first, second, third = numbers
        return (third - second) - (second - first)

    assert len(entry_ids) == len(cursors) == 3
    assert inferred(entry_ids) not in (3, 6), f"entry ids {entry_ids} count B's 3 orders"
    assert inferred(cursors) not in (3, 6), f"cursors {cursors} count B's 3 orders"
