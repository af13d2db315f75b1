"""The operator API under /api/v1/admin/applications: operator keys only (anyone else sees 404),
the queue, one application, and each decision with its audit record and its refusals."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select

from codeshelf.audit.models import AuditEvent
from codeshelf.kit.db import Database
from codeshelf.kit.vault import Vault
from tests.fixtures.applications import file as file_one
from tests.fixtures.browser import add_member
from tests.fixtures.claims import OperatorKeyHandle, issue_operator_key
from tests.fixtures.factories import Shop
from tests.fixtures.http import assert_problem

ADMIN = "/api/v1/admin/applications"


def post(
    client: httpx.Client, key: OperatorKeyHandle, path: str, body: Any = None
) -> httpx.Response:
    return client.post(f"{ADMIN}/{path}", json=body, headers=key.headers)


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def test_only_operator_keys_reach_the_applications_api(
    client: httpx.Client, db: Database, shop: Shop
) -> None:
    public_id = file_one(db).application.public_id
    for headers in ({}, shop.a.headers, {"Authorization": "Bearer cs_op_" + "A" * 43}):
        for response in (
            client.get(ADMIN, headers=headers),
            client.get(f"{ADMIN}/{public_id}", headers=headers),
            client.post(f"{ADMIN}/{public_id}/approve", json={}, headers=headers),
            client.post(f"{ADMIN}/{public_id}/decline", json={"bogus": 1}, headers=headers),
        ):
            assert_problem(response, 404, "not-found")
    with db.read_session() as session:
        assert session.scalars(select(AuditEvent.action)).all().count("application.approve") == 0


def test_the_queue_and_one_application(client: httpx.Client, db: Database) -> None:
    alice = issue_operator_key(db, "alice")
    first = file_one(db).application.public_id
    second = file_one(db, email="ops@bolt.example", company="Bolt Keys", integration="manual")
    listed = ok(client.get(ADMIN, headers=alice.headers))["data"]
    assert [a["id"] for a in listed] == [first, second.application.public_id]
    one = ok(client.get(f"{ADMIN}/{first}", headers=alice.headers))
    assert one == listed[0]
    assert one["monthly_volume"] == {"amount": "25000.00", "currency": "EUR"}
    assert one["regions"] == ["DE", "AT", "CH"] and one["status"] == "submitted"
    assert one["email"] == "jana@nordlicht.example" and one["partner_id"] is None
    assert "token" not in str(one) and "hash" not in str(one)
    only = ok(client.get(ADMIN, params={"status": "declined"}, headers=alice.headers))
    assert only["data"] == []
    bad = client.get(ADMIN, params={"status": "open"}, headers=alice.headers)
    assert bad.status_code == 422
    missing = client.get(f"{ADMIN}/apl_00000000000000000000", headers=alice.headers)
    assert_problem(missing, 404, "application-not-found")


def test_review_approve_and_the_owner_invitation(client: httpx.Client, db: Database) -> None:
    alice = issue_operator_key(db, "alice")
    public_id = file_one(db).application.public_id
    assert ok(post(client, alice, f"{public_id}/review"))["status"] == "under_review"
    assert_problem(post(client, alice, f"{public_id}/review"), 409, "application-state-conflict")
    approved = ok(post(client, alice, f"{public_id}/approve", {"message": "Welcome aboard."}))
    assert approved["status"] == "approved" and approved["message"] == "Welcome aboard."
    assert approved["reviewed_by"] == "operator:alice"
    assert approved["partner_id"].startswith("ptr_")
    invitation = approved["invitation"]
    assert (invitation["email"], invitation["role"]) == ("jana@nordlicht.example", "owner")
    assert invitation["link"].startswith("http://127.0.0.1:8000/account/invite/")
    page = client.get(invitation["link"].removeprefix("http://127.0.0.1:8000"))
    assert page.status_code == 200 and "jana@nordlicht.example" in page.text
    shown = ok(client.get(f"{ADMIN}/{public_id}", headers=alice.headers))
    assert "invitation" not in shown and shown["partner_id"] == approved["partner_id"]
    again = post(client, alice, f"{public_id}/approve", {})
    assert_problem(again, 409, "application-state-conflict")
    with db.read_session() as session:
        trail = session.scalars(
            select(AuditEvent).where(AuditEvent.subject == public_id).order_by(AuditEvent.id)
        ).all()
    assert [(e.action, e.actor) for e in trail[1:]] == [
        ("application.review", "operator:alice"),
        ("application.approve", "operator:alice"),
    ]


def test_decline_needs_a_message_and_refuses_other_fields(
    client: httpx.Client, db: Database
) -> None:
    alice = issue_operator_key(db, "alice")
    public_id = file_one(db).application.public_id
    for body in ({}, {"message": ""}, {"message": "x" * 2001}, {"message": "no", "status": "x"}):
        assert post(client, alice, f"{public_id}/decline", body).status_code == 422, body
    hostile = post(client, alice, f"{public_id}/decline", {"message": "Sorry \u202edenied"})
    body = assert_problem(hostile, 422, "validation-error")
    assert body["errors"][0]["pointer"] == "#/message"
    declined = ok(post(client, alice, f"{public_id}/decline", {"message": "Volume too low."}))
    assert (declined["status"], declined["message"]) == ("declined", "Volume too low.")
    assert_problem(
        post(client, alice, f"{public_id}/approve", {}), 409, "application-state-conflict"
    )


def test_approval_of_an_address_with_an_account_is_refused(
    client: httpx.Client, db: Database, vault: Vault, shop: Shop
) -> None:
    alice = issue_operator_key(db, "alice")
    add_member(db, vault, shop.a.id, "buyer", "jana@nordlicht.example")
    public_id = file_one(db).application.public_id
    assert_problem(post(client, alice, f"{public_id}/approve", {}), 409, "member-exists")
    assert ok(client.get(f"{ADMIN}/{public_id}", headers=alice.headers))["status"] == "submitted"


def test_the_operator_openapi_documents_the_applications_api(
    client: httpx.Client, db: Database
) -> None:
    alice = issue_operator_key(db, "alice")
    operator_doc = ok(client.get("/api/v1/admin/openapi.json", headers=alice.headers))
    paths = operator_doc["paths"]
    for path in ("", "/{application_id}"):
        assert f"{ADMIN}{path}" in paths
    for action in ("review", "approve", "decline"):
        operation = paths[f"{ADMIN}/{{application_id}}/{action}"]["post"]
        assert operation["summary"] and operation["description"]
        assert {"200", "404", "409"} <= set(operation["responses"])
    assert {"ApplicationOut", "ApprovedOut", "Declining"} <= set(
        operator_doc["components"]["schemas"]
    )
    partner_doc = ok(client.get("/api/v1/openapi.json"))
    assert not [path for path in partner_doc["paths"] if "application" in path]
