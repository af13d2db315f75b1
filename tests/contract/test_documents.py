"""What the two OpenAPI documents declare, checked against the code and the specification: they
validate (openapi-spec-validator) and every reference resolves; the key is a bearer scheme; every
error status has the one Problem schema and names its problem types; the headers, operation ids
and webhooks are there; the seeds' order bodies are valid (jsonschema) and accepted."""

from __future__ import annotations

import ast
import json
import re
import uuid
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from openapi_spec_validator import validate

from codeshelf.api import contract_parts
from codeshelf.kit.db import Database
from codeshelf.kit.vault import Vault
from codeshelf.webhooks.models import EVENT_TYPES
from tests.fixtures import factories
from tests.fixtures.claims import issue_operator_key
from tests.fixtures.factories import Shop
from tests.fixtures.sandbox import issue_sandbox_key

SQLITE = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # the HTTP layer

SRC = Path(__file__).resolve().parents[2] / "src" / "codeshelf"
METHODS = {"get", "put", "post", "delete", "patch"}
PROBLEM = "https://codeshelf.dev/problems/"

# The order bodies of the specification, as written there.
SEED_002_ITEMS = {  # seed 002, "Example: placing an order"
    "items": [
        {"region": "US", "denomination": 50, "qty": 10},
        {"region": "TR", "denomination": 250, "qty": 5},
    ]
}
SEED_003_FLAT = {  # seed 003, "Order request"
    "product_id": "psn-us-50",
    "quantity": 2,
    "client_order_id": "ORDER-1042",
    "idempotency_key": "8d91b0",
}


@pytest.fixture
def documents(client: httpx.Client, db: Database) -> dict[str, dict[str, Any]]:
    operator = issue_operator_key(db)
    partner = client.get("/api/v1/openapi.json")
    admin = client.get("/api/v1/admin/openapi.json", headers=operator.headers)
    assert partner.status_code == admin.status_code == 200
    return {"partner": partner.json(), "operator": admin.json()}


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def validator(document: dict[str, Any], schema: dict[str, Any]) -> jsonschema.Validator:
    """A JSON Schema validator for ``schema``, its #/components references resolved."""
    return jsonschema.Draft202012Validator({**schema, "components": document["components"]})


@SQLITE
def test_both_documents_are_valid_openapi_and_every_reference_resolves(
    documents: dict[str, dict[str, Any]],
) -> None:
    for document in documents.values():
        validate(document)  # the validator does not follow every $ref: look at each one
        text = json.dumps(document)
        for kind, name in re.findall(r'"#/components/(\w+)/([^"]+)"', text):
            assert name in document["components"][kind], (kind, name)
        assert "HTTPValidationError" not in text
    assert {"ClaimCreate", "EvidenceCreate"} <= set(documents["partner"]["components"]["schemas"])


@SQLITE
def test_the_api_key_is_a_bearer_scheme_not_an_optional_header(
    documents: dict[str, dict[str, Any]],
) -> None:
    for name, scheme in (("partner", "partnerKey"), ("operator", "operatorKey")):
        document = documents[name]
        schemes = document["components"]["securitySchemes"]
        assert schemes == {scheme: {**schemes[scheme], "type": "http", "scheme": "bearer"}}
        for method, path, operation in operations(document):
            assert operation["security"] == [{scheme: []}], (method, path)
            headers = [p["name"].lower() for p in operation.get("parameters", [])]
            assert "authorization" not in headers, (method, path)
            assert "401" in operation["responses"] or name == "operator", (method, path)
            assert "429" in operation["responses"], (method, path)


@SQLITE
def test_every_error_status_is_a_problem_naming_its_types(
    documents: dict[str, dict[str, Any]],
) -> None:
    for document in documents.values():
        for method, path, operation in operations(document):
            errors = {s: r for s, r in operation["responses"].items() if int(s) >= 400}
            assert "400" in errors, (method, path)  # a second Authorization header, for one
            if operation.get("parameters") or "requestBody" in operation:
                assert "422" in errors, (method, path)
            for status, response in errors.items():
                assert response["content"] == {
                    "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
                }, (method, path, status)
                assert re.findall(
                    r"\* \[`([a-z-]+)`\]\(/problems/\1\): .+ \(`(https://\S+)`\)",
                    response["description"],
                )


@SQLITE
def test_the_problems_declared_come_from_the_code_that_raises_them(
    documents: dict[str, dict[str, Any]],
) -> None:
    paths = documents["partner"]["paths"]

    def slugs(path: str, method: str, status: str) -> set[str]:
        text = paths[path][method]["responses"][status]["description"]
        return set(re.findall(r"\* \[`([a-z-]+)`\]", text))

    assert slugs("/api/v1/orders", "post", "402") == {"insufficient-funds"}
    assert {"insufficient-stock", "idempotency-key-in-use", "duplicate-client-order-id"} == slugs(
        "/api/v1/orders", "post", "409"
    )
    assert {"idempotency-key-reused", "unknown-product"} <= slugs("/api/v1/orders", "post", "422")
    # Deep in the service (orders.service.reveal_codes): the codes of an order not delivered yet.
    assert slugs("/api/v1/orders/{order_id}/codes", "get", "409") == {"codes-not-ready"}
    # The order read, not the order placed: no idempotency problem is its (the hand-written
    # list said "key reused with another body" here).
    read = paths["/api/v1/orders/{order_id}"]["get"]["responses"]
    assert set(read) == {"200", "400", "401", "404", "422", "429", "500"}
    assert slugs("/api/v1/orders/{order_id}", "get", "404") == {"order-not-found"}
    assert "idempotency" not in json.dumps(read).lower()
    operator = documents["operator"]["paths"]
    approve = "/api/v1/admin/deposits/{request_id}/approve"
    assert "four-eyes" in operator[approve]["post"]["responses"]["403"]["description"]


def test_every_problem_extension_the_code_sends_is_in_the_problem_schema() -> None:
    """The keywords a DomainError is made with (besides ``pointer``) become members of the
    problem document (``api.problems.error_body``): each must be declared, and each declared
    one must still be made somewhere."""
    made: set[str] = set()
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and ast.unparse(node.func).endswith("Error"):
                made |= {kw.arg for kw in node.keywords if kw.arg not in (None, "pointer")}
    made -= {"headers"}  # HTTPProblemError's response headers, not members
    assert made == set(contract_parts.PROBLEM_EXTENSIONS)


@SQLITE
def test_the_problems_the_server_sends_match_the_schema(
    client: httpx.Client, documents: dict[str, dict[str, Any]], shop: Shop, db: Database
) -> None:
    problem = validator(documents["partner"], {"$ref": "#/components/schemas/Problem"})
    broke = factories.add_partner(db, "Broke Games")
    order = {"product_id": shop.sku, "quantity": 1}
    sent = [
        client.post(
            "/api/v1/orders", json=order, headers={**broke.headers, "Idempotency-Key": "a"}
        ),
        client.post("/api/v1/orders", json={"items": [{"qty": 0}]}, headers=shop.a.headers),
        client.get("/api/v1/orders?limit=0", headers=shop.a.headers),
        client.get("/api/v1/orders/ord_nope", headers=shop.a.headers),
        client.get("/api/v1/balance"),
    ]
    assert [response.status_code for response in sent] == [402, 422, 422, 404, 401]
    for response in sent:
        problem.validate(response.json())
    assert sent[0].json()["balance"] == {"amount": "0.00", "currency": "USD"}


@SQLITE
def test_the_headers_the_server_sends_are_declared(documents: dict[str, dict[str, Any]]) -> None:
    create = documents["partner"]["paths"]["/api/v1/orders"]["post"]["responses"]
    assert {"Location", "Idempotent-Replayed", "RateLimit", "RateLimit-Policy"} <= set(
        create["201"]["headers"]
    )
    assert "Retry-After" in create["409"]["headers"] and "Retry-After" in create["429"]["headers"]
    assert create["429"]["headers"]["Retry-After"]["required"] is True
    assert create["201"]["headers"]["RateLimit"]["required"] is True
    assert "WWW-Authenticate" in create["401"]["headers"]
    claims = documents["partner"]["paths"]["/api/v1/claims"]["post"]["responses"]
    assert "Location" in claims["201"]["headers"] and "Location" not in claims["200"]["headers"]
    listed = documents["partner"]["paths"]["/api/v1/orders"]["get"]["responses"]
    assert "Idempotent-Replayed" not in listed["200"]["headers"]


@SQLITE
def test_operations_have_readable_unique_ids(documents: dict[str, dict[str, Any]]) -> None:
    ids = [op["operationId"] for d in documents.values() for _, _, op in operations(d)]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[a-z]+(?:[A-Z][a-z]*)*", i) for i in ids), ids
    assert {"createOrder", "listOrders", "getOrder", "getOrderCodes", "listEvents"} <= set(ids)
    assert {"approveClaim", "approveDeposit", "approveApplication"} <= set(ids)
    assert set(contract_parts.OPERATION_IDS.values()) <= set(ids)  # no name left for a route gone


@SQLITE
def test_links_lead_from_what_a_post_creates_to_its_operations(
    documents: dict[str, dict[str, Any]],
) -> None:
    links = documents["partner"]["paths"]["/api/v1/orders"]["post"]["responses"]["201"]["links"]
    assert links["getOrderCodes"] == {
        "operationId": "getOrderCodes",
        "parameters": {"order_id": "$response.body#/id"},
    }
    assert set(links) == {"getOrder", "getOrderCodes"}
    listed = documents["partner"]["paths"]["/api/v1/orders"]["get"]["responses"]["200"]["links"]
    assert listed["getOrder"]["parameters"] == {"order_id": "$response.body#/data/0/id"}


@SQLITE
def test_the_seed_order_bodies_are_valid_and_accepted(
    client: httpx.Client, documents: dict[str, dict[str, Any]], shop: Shop, db: Database
) -> None:
    body = validator(documents["partner"], {"$ref": "#/components/schemas/OrderCreate"})
    body.validate(SEED_002_ITEMS)
    body.validate(SEED_003_FLAT)
    declared = documents["partner"]["components"]["schemas"]["OrderCreate"]["examples"]
    assert declared == [SEED_003_FLAT, SEED_002_ITEMS]  # what Swagger UI shows
    both = {"product_id": shop.sku, "quantity": 1, "qty": 1}
    neither = {"product_id": shop.sku}
    mixed = {"items": [{"product_id": shop.sku, "quantity": 1}], "product_id": shop.sku}
    for wrong in (both, neither, mixed, {"items": [{"product_id": shop.sku}]}):
        assert not body.is_valid(wrong), wrong
        refused = client.post("/api/v1/orders", json=wrong, headers=shop.a.headers)
        assert refused.status_code == 422, (wrong, refused.text)

    factories.add_product(db, "psn-tr-250", "TR", "250", "TRY", "10.00", "USD")
    factories.load_codes(db, Vault(factories.SECRET), "psn-tr-250", 5)
    for seed in (SEED_002_ITEMS, SEED_003_FLAT):
        headers = {**shop.a.headers, "Idempotency-Key": str(uuid.uuid4())}
        if "idempotency_key" in seed:
            headers.pop("Idempotency-Key")
        placed = client.post("/api/v1/orders", json=seed, headers=headers)
        assert placed.status_code == 201, placed.text
        assert placed.json()["status"] == "delivered"


@SQLITE
def test_the_webhooks_section_matches_the_events_sent(
    client: httpx.Client, documents: dict[str, dict[str, Any]], shop: Shop, db: Database
) -> None:
    """Real events (an order's three, balance.low) and the sandbox's sample of every type,
    read back from the events feed (the webhook's body), against the declared payloads."""
    partner = documents["partner"]
    assert set(partner["webhooks"]) == set(EVENT_TYPES)
    assert "webhooks" not in documents["operator"]
    signing = [p["name"] for p in partner["webhooks"]["order.paid"]["post"]["parameters"]]
    assert signing == ["webhook-id", "webhook-timestamp", "webhook-signature"]

    alert = client.put(
        "/api/v1/balance/alerts/USD", json={"below": "990.00"}, headers=shop.a.headers
    )
    assert alert.status_code == 200, alert.text
    placed = client.post("/api/v1/orders", json=SEED_003_FLAT, headers=shop.a.headers)
    assert placed.status_code == 201, placed.text
    sandbox = issue_sandbox_key(db, shop.a.id)
    for event_type in EVENT_TYPES:
        trigger = {"event": event_type}
        sent = client.post(
            "/api/v1/sandbox/webhooks/trigger", json=trigger, headers=sandbox.headers
        )
        assert sent.status_code == 202, sent.text

    seen = []
    for key in (shop.a, sandbox):
        events = client.get("/api/v1/events", headers=key.headers).json()["data"]
        for event in events:
            schema = partner["webhooks"][event["type"]]["post"]["requestBody"]["content"]
            validator(partner, schema["application/json"]["schema"]).validate(event["payload"])
            seen.append((key is sandbox, event["type"]))
    real = [event_type for sample, event_type in seen if not sample]
    assert real == ["order.created", "order.paid", "order.fulfilled", "balance.low"]
    assert sorted(t for sample, t in seen if sample) == sorted(EVENT_TYPES)
