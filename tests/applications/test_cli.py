"""``codeshelf application …``: the queue, one application as the admin API shows it, and the
decisions (the owner's invitation link printed on approval), named in the audit log after the
CLI or the ``--as`` staff member, who must be allowed."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
from sqlalchemy import select
from typer.testing import Result

from codeshelf.audit.models import AuditEvent
from codeshelf.kit.db import Database
from codeshelf.kit.vault import Vault
from tests.fixtures.applications import add_staff
from tests.fixtures.applications import file as file_one
from tests.fixtures.claims import issue_operator_key
from tests.fixtures.factories import run_cli

LINK = re.compile(r"http://127\.0\.0\.1:8000/account/invite/[\w-]{43}")


def ok(result: Result) -> Any:
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return json.loads(result.stdout)


def refused(result: Result, fragment: str) -> None:
    assert result.exit_code == 1, (result.exit_code, result.stdout, result.stderr)
    assert result.stdout == "" and result.stderr.startswith("error: ")
    assert fragment in result.stderr, result.stderr


def actors(db: Database, subject: str) -> list[tuple[str, str]]:
    with db.read_session() as session:
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.subject == subject).order_by(AuditEvent.id)
        )
        return [(e.action, e.actor) for e in events][1:]  # after the filing


def test_list_and_show_print_what_the_admin_api_shows(
    db: Database, database_url: str, client: httpx.Client
) -> None:
    first = file_one(db).application.public_id
    second = file_one(db, email="ops@bolt.example", company="Bolt Keys").application.public_id
    listed = ok(run_cli(database_url, "application", "list", "--json"))
    assert [a["id"] for a in listed] == [first, second]
    alice = issue_operator_key(db)
    api = client.get(f"/api/v1/admin/applications/{first}", headers=alice.headers).json()
    assert ok(run_cli(database_url, "application", "show", first, "--json")) == api == listed[0]
    text = run_cli(database_url, "application", "list")
    assert (
        text.exit_code == 0
        and "Nordlicht Games GmbH" in text.stdout
        and "25000.00 EUR" in text.stdout
    )
    shown = run_cli(database_url, "application", "show", first)
    assert "jana@nordlicht.example" in shown.stdout and "DE, AT, CH" in shown.stdout
    assert ok(run_cli(database_url, "application", "list", "--status", "approved", "--json")) == []
    refused(run_cli(database_url, "application", "list", "--status", "open"), "status must be")
    refused(run_cli(database_url, "application", "show", "apl_00000000000000000000"), "no app")


def test_review_approve_print_the_owner_link_and_audit_the_cli(
    db: Database, database_url: str, client: httpx.Client
) -> None:
    public_id = file_one(db).application.public_id
    reviewed = ok(run_cli(database_url, "application", "review", public_id, "--json"))
    assert reviewed["status"] == "under_review"
    approved = ok(
        run_cli(
            database_url, "application", "approve", public_id, "--message", "Welcome.", "--json"
        )
    )
    assert approved["status"] == "approved" and approved["message"] == "Welcome."
    assert LINK.fullmatch(approved["invitation"]["link"])
    assert client.get(approved["invitation"]["link"][len("http://127.0.0.1:8000") :]).is_success
    assert actors(db, public_id) == [
        ("application.review", "operator:cli"),
        ("application.approve", "operator:cli"),
    ]
    refused(run_cli(database_url, "application", "approve", public_id), "is approved")

    other = file_one(db, email="ops@bolt.example", company="Bolt Keys").application.public_id
    printed = run_cli(database_url, "application", "approve", other)
    assert printed.exit_code == 0 and LINK.search(printed.stdout), printed.stdout
    assert "owner's invitation for ops@bolt.example" in printed.stdout


def test_decline_needs_a_message(db: Database, database_url: str) -> None:
    public_id = file_one(db).application.public_id
    missing = run_cli(database_url, "application", "decline", public_id)
    assert missing.exit_code == 2 and "--message" in missing.stderr
    refused(
        run_cli(database_url, "application", "decline", public_id, "--message", " "),
        "write the applicant a message",
    )
    declined = ok(
        run_cli(
            database_url, "application", "decline", public_id, "--message", "Not now.", "--json"
        )
    )
    assert (declined["status"], declined["message"]) == ("declined", "Not now.")


def test_the_as_staff_member_is_named_and_must_be_allowed(
    db: Database, database_url: str, vault: Vault
) -> None:
    admin = add_staff(db, vault, "admin", "ada@codeshelf.example")
    add_staff(db, vault, "support", "sam@codeshelf.example")
    add_staff(db, vault, "stock", "stu@codeshelf.example")
    public_id = file_one(db).application.public_id

    def as_(email: str, *args: str) -> Result:
        return run_cli(database_url, "--as", email, "application", *args)

    refused(as_("stu@codeshelf.example", "list"), "may not do this")
    assert ok(as_("sam@codeshelf.example", "review", public_id, "--json"))["status"] == (
        "under_review"
    )
    refused(as_("sam@codeshelf.example", "approve", public_id), "may not do this")
    refused(as_("nobody@codeshelf.example", "approve", public_id), "no staff member")
    approved = ok(as_("ada@codeshelf.example", "approve", public_id, "--json"))
    assert approved["reviewed_by"] == admin
    assert [actor for _, actor in actors(db, public_id)][-1] == admin
