"""Every error is application/problem+json, with a stable type per problem."""

from __future__ import annotations

import re
from collections import defaultdict

import httpx
import pytest
from fastapi.routing import iter_route_contexts

from codeshelf.api.app import create_app
from codeshelf.api.problems import PROBLEM_BASE
from codeshelf.kit.db import Database
from codeshelf.kit.settings import Settings
from tests.fixtures.claims import operator_headers
from tests.fixtures.factories import Shop
from tests.fixtures.http import assert_problem


def test_unknown_routes_are_problem_404(client: httpx.Client) -> None:
    response = client.get("/api/v1/nothing-here")
    body = assert_problem(response, 404, "not-found")
    assert body["type"] == PROBLEM_BASE + "not-found"
    assert body["instance"] == "/api/v1/nothing-here"


def test_wrong_methods_are_problem_405(client: httpx.Client, shop: Shop) -> None:
    response = client.delete("/api/v1/balance", headers=shop.a.headers)
    assert_problem(response, 405, "method-not-allowed")
    assert "GET" in response.headers["allow"]


def test_oversized_bodies_are_refused_before_reading(client: httpx.Client, shop: Shop) -> None:
    huge = b'{"product_id": "' + b"x" * 2_000_000 + b'"}'
    response = client.post(
        "/api/v1/orders",
        content=huge,
        headers={**shop.a.headers, "Idempotency-Key": "big", "Content-Type": "application/json"},
    )
    assert_problem(response, 413, "payload-too-large")


def test_oversized_chunked_bodies_are_refused(client: httpx.Client, shop: Shop) -> None:
    def chunks() -> object:
        for _ in range(40):
            yield b"x" * 65_536

    response = client.post(
        "/api/v1/orders",
        content=chunks(),  # type: ignore[arg-type]
        headers={**shop.a.headers, "Idempotency-Key": "big", "Content-Type": "application/json"},
    )
    assert_problem(response, 413, "payload-too-large")


def test_malformed_json_is_400(client: httpx.Client, shop: Shop) -> None:
    response = client.post(
        "/api/v1/orders",
        content=b'{"product_id": ',
        headers={**shop.a.headers, "Idempotency-Key": "x", "Content-Type": "application/json"},
    )
    assert_problem(response, 400, "malformed-request")


def test_query_validation_names_the_parameter(client: httpx.Client, shop: Shop) -> None:
    response = client.get("/api/v1/orders", params={"limit": 100_000}, headers=shop.a.headers)
    body = assert_problem(response, 422, "validation-error")
    assert body["errors"][0]["parameter"] == "limit"


def test_the_same_problem_has_the_same_type_and_title(client: httpx.Client, shop: Shop) -> None:
    one = client.get("/api/v1/orders/ord_a", headers=shop.a.headers).json()
    two = client.get("/api/v1/orders/ord_b", headers=shop.a.headers).json()
    assert (one["type"], one["title"]) == (two["type"], two["title"])
    assert one["detail"] != two["detail"]


def test_openapi_and_docs_are_served(client: httpx.Client) -> None:
    spec = client.get("/api/v1/openapi.json").json()
    assert spec["openapi"].startswith("3.1")
    assert {"/api/v1/orders", "/api/v1/inventory", "/api/v1/balance"} <= set(spec["paths"])
    assert client.get("/docs").status_code == 200


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # routing only
def test_every_405_names_every_method_of_its_path(
    client: httpx.Client, shop: Shop, db: Database, settings: Settings
) -> None:
    """For each path of the API, a method it lacks is a 405 whose Allow lists all it has."""
    by_path: dict[str, set[str]] = defaultdict(set)
    for route in iter_route_contexts(create_app(settings).routes):
        if route.path and route.path.startswith("/api/") and route.methods:
            by_path[route.path] |= route.methods
    assert by_path["/api/v1/orders"] == {"GET", "POST"}
    patch = client.patch("/api/v1/orders", headers=shop.a.headers)
    assert (patch.status_code, patch.headers["allow"]) == (405, "GET, POST")
    operator = operator_headers(db)
    for template, methods in by_path.items():
        path = re.sub(r"\{[^}]+\}", "zz9", template)
        headers = operator if template.startswith("/api/v1/admin/") else shop.a.headers
        for method in sorted({"GET", "POST", "PUT", "PATCH", "DELETE"} - methods)[:2]:
            response = client.request(method, path, headers=headers)
            assert_problem(response, 405, "method-not-allowed")
            assert response.headers["allow"] == ", ".join(sorted(methods)), (method, template)
