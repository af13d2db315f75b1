"""Hostile input: every refusal is a clean problem+json 4xx, and a refused request changes nothing.

Each hostile request goes out on a connection of its own, so one 500 cannot disturb the next.
Many cases share one test (``each`` reports every failing case) to keep the suite fast.
"""

from __future__ import annotations

import base64
import json
import uuid
from urllib.parse import urlencode

import httpx
import pytest

from codeshelf.kit.db import Database
from tests.fixtures import factories
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
from tests.fixtures.servers import LiveServer

VALID = json.dumps(ONE).encode()


def _untouched(live_server: LiveServer, shop: Shop, db: Database) -> None:
    """Nothing was ordered, charged or allocated, and every invariant still holds."""
    assert order_count(db) == 0
    assert available_codes(db) == 20
    with_balance = request(live_server.url, "GET", "/api/v1/balance", headers=shop.a.headers)
    assert with_balance.json()["data"] == [{"amount": "1000.00", "currency": "USD"}]
    assert violations(db) == []


def _pointers(problem: dict[str, object]) -> list[object]:
    errors = problem.get("errors")
    assert isinstance(errors, list), problem
    return [error.get("pointer") for error in errors]


# --- NUL bytes and lone surrogates -------------------------------------------------------------


def test_a_nul_byte_in_client_order_id_is_a_validation_error(
    live_server: LiveServer, shop: Shop, db: Database
) -> None:
    body = {**ONE, "client_order_id": "ORDER-\u00001"}
    response = post_order(live_server.url, shop.a.headers, json.dumps(body).encode())
    problem = assert_clean_problem(response, 422)
    assert "#/client_order_id" in _pointers(problem)
    _untouched(live_server, shop, db)


def test_a_nul_byte_in_a_product_field_is_refused_as_input(
    live_server: LiveServer, shop: Shop, db: Database
) -> None:
    bodies: list[dict[str, object]] = [
        {"product_id": "psn-us-50\u0000", "quantity": 1},
        {"items": [{"region": "U\u0000S", "denomination": 50, "quantity": 1}]},
    ]

    def check(body: dict[str, object]) -> None:
        response = post_order(live_server.url, shop.a.headers, json.dumps(body).encode())
        assert_clean_problem(response, 422)

    each(bodies, check)
    _untouched(live_server, shop, db)


def test_a_nul_byte_in_an_order_id_or_filter_is_not_a_server_error(
    live_server: LiveServer, shop: Shop
) -> None:
    def check(path: str) -> None:
        response = request(live_server.url, "GET", path, headers=shop.a.headers)
        if response.status_code == 200:  # a filter that matches nothing is a fine answer
            assert response.json()["data"] == []
        else:
            assert_clean_problem(response, 404, 422)

    each([f"{ORDERS}/ord_%00", f"{ORDERS}/ord_%00/codes", f"{ORDERS}?client_order_id=A%00B"], check)


def test_lone_surrogates_are_refused_as_input(
    live_server: LiveServer, shop: Shop, db: Database
) -> None:
    bodies = [
        b'{"product_id": "psn-us-50", "quantity": 1, "client_order_id": "\\ud800"}',
        b'{"product_id": "\\udfff", "quantity": 1}',
        b'{"items": [{"region": "\\ud83dUS", "denomination": 50, "quantity": 1}]}',
        b'{"product_id": "psn-us-50", "quantity": 1, "idempotency_key": "\\ud800"}',
    ]

    def check(raw: bytes) -> None:
        assert_clean_problem(post_order(live_server.url, shop.a.headers, raw), 400, 422)

    each(bodies, check)
    _untouched(live_server, shop, db)


# --- Bodies that are not one JSON object --------------------------------------------------------


def test_a_body_that_is_not_one_json_object_orders_nothing_and_does_not_burn_the_key(
    live_server: LiveServer, shop: Shop, db: Database
) -> None:
    cases: list[tuple[bytes, str | None]] = [
        (b"product_id=psn-us-50&quantity=1", "application/x-www-form-urlencoded"),
        (VALID, "text/plain"),
        (VALID, None),
        (b"--x\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--x--", "multipart/form-data"),
        (b'[{"product_id": "psn-us-50", "quantity": 1}]', "application/json"),
        (b'"psn-us-50"', "application/json"),
        (b"1", "application/json"),
        (b"null", "application/json"),
        (b"", "application/json"),
        (VALID + b"{}", "application/json"),
        (b'{"product_id": "psn-us-50", "quantity": 1', "application/json"),
        (b"{'product_id': 'psn-us-50', 'quantity': 1}", "application/json"),
    ]
    key = str(uuid.uuid4())

    def check(case: tuple[bytes, str | None]) -> None:
        content, content_type = case
        refused = post_order(
            live_server.url, shop.a.headers, content, content_type=content_type, key=key
        )
        assert_clean_problem(refused, 400, 415, 422)

    each(cases, check)
    _untouched(live_server, shop, db)
    assert stored_keys(db) == 0
    # Refused before any work: the same key still places the order once it is sent properly.
    placed = post_order(live_server.url, shop.a.headers, VALID, key=key)
    assert placed.status_code == 201, placed.text
    assert "idempotent-replayed" not in placed.headers


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # parsing only: no database
def test_every_body_that_is_not_json_is_a_malformed_request(
    live_server: LiveServer, shop: Shop
) -> None:
    bodies = [
        b'{"product_id": "psn-us-50", "quantity": 1',  # truncated: already right
        b'{"items": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
        b'{"product_id": "psn-us-50", "quantity": ' + b"9" * 5_000 + b"}",
        b'{"product_id": "psn-us-50\xff\xfe", "quantity": 1}',
    ]

    def check(content: bytes) -> None:
        problem = assert_clean_problem(post_order(live_server.url, shop.a.headers, content), 400)
        assert problem["type"] == "https://codeshelf.dev/problems/malformed-request", problem

    each(bodies, check)


# --- Numbers ------------------------------------------------------------------------------------


def test_a_quantity_that_is_not_a_small_positive_integer_is_refused(
    live_server: LiveServer, shop: Shop, db: Database
) -> None:
    quantities = [b"1e400", b"-1e400", b"-0", b"0", b"-1", b"1.0", b"1E2", b"0.5", b'"1"']
    quantities += [b"true", b"NaN", b"Infinity", b"9" * 40, b"-" + b"9" * 40, b"[1]", b"{}"]

    def check(quantity: bytes) -> None:
        for raw in (
            b'{"product_id": "psn-us-50", "quantity": ' + quantity + b"}",
            b'{"items": [{"product_id": "psn-us-50", "qty": ' + quantity + b"}]}",
        ):
            problem = assert_clean_problem(post_order(live_server.url, shop.a.headers, raw), 422)
            assert {"#/quantity", "#/items/0/quantity", "#/items/0/qty"} & set(_pointers(problem))

    each(quantities, check)
    _untouched(live_server, shop, db)


def test_an_odd_denomination_never_matches_a_product(
    live_server: LiveServer, shop: Shop, db: Database
) -> None:
    denominations = [b"1e400", b"NaN", b'"NaN"', b"-Infinity", b'"Infinity"', b"1e-400"]
    denominations += [b'"1E+100000"', b"-50", b"50.001", b"0", b'"fifty"', b"true", b"5e1000"]

    def check(denomination: bytes) -> None:
        raw = b'{"items": [{"region": "US", "denomination": ' + denomination + b', "quantity": 1}]}'
        problem = assert_clean_problem(post_order(live_server.url, shop.a.headers, raw), 422)
        assert "#/items/0/denomination" in _pointers(problem)

    each(denominations, check)
    _untouched(live_server, shop, db)


def test_duplicate_json_members_are_refused_and_order_nothing(
    live_server: LiveServer, shop: Shop, db: Database
) -> None:
    # RFC 8259 leaves duplicate names undefined: a parser in front of us may read the first
    # where ours read the last. Such a body means two things, so it is refused outright.
    for raw in (
        b'{"product_id": "psn-us-50", "quantity": 1, "quantity": 2}',
        b'{"items": [{"product_id": "psn-us-50", "quantity": 1, "product_id": "x"}]}',
    ):
        answer = post_order(live_server.url, shop.a.headers, raw, key="dup-members")
        problem = assert_clean_problem(answer, 400)
        assert problem["type"].endswith("/malformed-request") and "twice" in problem["detail"]
    _untouched(live_server, shop, db)


def test_a_second_authorization_or_idempotency_key_header_is_refused(
    live_server: LiveServer, shop: Shop, db: Database
) -> None:
    """Which of two keys would count is anyone's guess (a proxy may pick the other one)."""
    other = factories.add_partner(db, "Mallory")
    body = json.dumps(ONE).encode()
    mine, theirs = shop.a.headers["Authorization"], f"Bearer {other.key}"
    twice = [
        [("Authorization", mine), ("Authorization", theirs), ("Idempotency-Key", "k-1")],
        [("Authorization", mine), ("Idempotency-Key", "k-2"), ("Idempotency-Key", "k-3")],
    ]
    for headers in twice:
        answer = httpx.post(
            f"{live_server.url}{ORDERS}", content=body,
            headers=[("Content-Type", "application/json"), *headers],
        )  # fmt: skip
        problem = assert_clean_problem(answer, 400)
        assert problem["type"].endswith("/malformed-request"), problem
    _untouched(live_server, shop, db)


# --- Unicode client_order_id --------------------------------------------------------------------


def test_unicode_client_order_ids_round_trip_exactly(live_server: LiveServer, shop: Shop) -> None:
    client_order_ids = [
        "\U0001f600" * 128,  # 128 characters, 512 bytes of UTF-8
        "e\u0301\u0301\u0301",  # combining marks
        "注文-\uff12\uff10\uff12\uff16",  # CJK and full-width digits
        " padded ",
        "x" * 128,
    ]

    def check(client_order_id: str) -> None:
        body = json.dumps({**ONE, "client_order_id": client_order_id}).encode()
        placed = post_order(live_server.url, shop.a.headers, body)
        assert placed.status_code == 201, placed.text
        assert placed.json()["client_order_id"] == client_order_id
        query = urlencode({"client_order_id": client_order_id})
        found = request(live_server.url, "GET", f"{ORDERS}?{query}", headers=shop.a.headers)
        assert [row["id"] for row in found.json()["data"]] == [placed.json()["id"]]

    each(client_order_ids, check)


def test_a_client_order_id_outside_1_to_128_characters_is_refused(
    live_server: LiveServer, shop: Shop, db: Database
) -> None:
    def check(client_order_id: str) -> None:
        body = json.dumps({**ONE, "client_order_id": client_order_id}).encode()
        problem = assert_clean_problem(post_order(live_server.url, shop.a.headers, body), 422)
        assert "#/client_order_id" in _pointers(problem)

    each(["\U0001f600" * 129, "x" * 129, "", "x" * 100_000], check)
    _untouched(live_server, shop, db)


def test_invisible_and_control_characters_in_client_order_id_are_refused(
    live_server: LiveServer, shop: Shop, db: Database
) -> None:
    """C1 controls and the characters that reorder or hide text (a right-to-left override
    makes "\u202egnp.exe" show as "exe.png") are refused, as C0 controls are."""

    def check(client_order_id: str) -> None:
        body = json.dumps({**ONE, "client_order_id": client_order_id}).encode()
        problem = assert_clean_problem(post_order(live_server.url, shop.a.headers, body), 422)
        assert "#/client_order_id" in _pointers(problem)

    hostile = [
        "\u202egnp.exe",
        "A\u200bB",
        "a\x85b",
        "a\x9bb",
        "\u2066x\u2069",
        "\ufeffx",
        "a\u200fb",
    ]
    each(hostile, check)
    _untouched(live_server, shop, db)
    query = urlencode({"client_order_id": "x" * 129})
    listed = request(live_server.url, "GET", f"{ORDERS}?{query}", headers=shop.a.headers)
    assert_clean_problem(listed, 422)


# --- Cursors ------------------------------------------------------------------------------------


def _cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _check_invalid_cursors(live_server: LiveServer, shop: Shop, cursors: list[str]) -> None:
    def check(cursor: str) -> None:
        for route in ("/api/v1/orders", "/api/v1/ledger"):
            response = request(
                live_server.url, "GET", f"{route}?cursor={cursor}", headers=shop.a.headers
            )
            problem = assert_clean_problem(response, 400)
            assert problem["type"].endswith("/invalid-cursor")
            assert problem["errors"] == [{"detail": problem["detail"], "parameter": "cursor"}]

    each(cursors, check)


def test_a_forged_cursor_is_an_invalid_cursor(live_server: LiveServer, shop: Shop) -> None:
    cursors = [_cursor("-5"), _cursor("abc"), "%25%25", _cursor("9" * 5000), _cursor("1.5")]
    _check_invalid_cursors(live_server, shop, [*cursors, _cursor("\u00ff"), "%00"])


def test_a_cursor_beyond_64_bits_is_an_invalid_cursor(live_server: LiveServer, shop: Shop) -> None:
    _check_invalid_cursors(live_server, shop, [_cursor(str(2**63)), _cursor("9" * 30)])


# --- Authorization headers ----------------------------------------------------------------------


def test_odd_authorization_headers_are_401_and_never_echoed(
    live_server: LiveServer, shop: Shop
) -> None:
    key = shop.a.key
    values = [
        "Bearer " + "A" * 65_000,
        "Bearer " + key + "A" * 65_000,
        "Bearer " + key + " " + key,
        "Bearer " + key[:-1],
        "Bearer " + key.upper(),
        "Token " + key,
        key,
        "Bearer\t" + key,
        "Bearer " + "\u00e9" * 100,
    ]

    def check(value: str) -> None:
        encoded = value.encode("latin-1")
        response = request(
            live_server.url, "GET", "/api/v1/balance", headers={b"Authorization": encoded}
        )
        assert_clean_problem(response, 401)
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert key not in response.text
        assert "ratelimit" not in response.headers  # nothing about the real key's quota

    each(values, check)


# --- Path traversal and percent-encoding --------------------------------------------------------


def test_encoded_paths_never_reach_another_partners_order_or_another_route(
    live_server: LiveServer, shop: Shop
) -> None:
    mine = post_order(live_server.url, shop.a.headers, VALID).json()["id"]
    encoded_id = mine.replace("_", "%5F")
    # The owner reaches the order however its id is percent-encoded.
    for path in (f"{ORDERS}/{encoded_id}", f"{ORDERS}/{mine}%2Fcodes"):
        own = request(live_server.url, "GET", path, headers=shop.a.headers)
        assert own.status_code == 200, (path, own.text)
    # Nobody else does, and no encoding escapes the order routes.
    paths = [
        f"{ORDERS}/{mine}",
        f"{ORDERS}/{encoded_id}",
        f"{ORDERS}/{encoded_id}/codes",
        f"{ORDERS}/{mine}%2Fcodes",
        f"{ORDERS}/{mine}%2F..%2F{mine}",
        f"{ORDERS}/..%2F{mine}",
        f"{ORDERS}/%2e%2e",
        f"{ORDERS}/..%2F..%2Fbalance",
        f"{ORDERS}/%2e%2e%2f%2e%2e%2fledger",
        f"{ORDERS}/{'x' * 4000}",
        f"{ORDERS}/%ED%A0%80",
        f"{ORDERS}/*",
        f"{ORDERS}/%25",
    ]

    def check(path: str) -> None:
        response = request(live_server.url, "GET", path, headers=shop.b.headers)
        body = assert_clean_problem(response, 404)
        assert mine not in str(body.get("existing_order_id"))
        assert "codes" not in body and "items" not in body

    each(paths, check)
