"""Staff members from the CLI: invited, listed, given another role, removed; an admin always
remains; and ``codeshelf --as EMAIL`` makes the audit log name the person, not the CLI."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from codeshelf.audit.models import AuditEvent
from codeshelf.kit.db import Database
from codeshelf.kit.vault import Vault
from tests.fixtures.browser import add_staff
from tests.fixtures.factories import run_cli


def _json(db: Database, *args: str) -> Any:
    result = run_cli(db.url, *args, "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_staff_are_invited_listed_changed_and_removed_by_a_named_admin(
    db: Database, vault: Vault
) -> None:
    ada = add_staff(db, vault, "admin", "ada@wholesale.example")
    sam = add_staff(db, vault, "support", "sam@wholesale.example")
    invited = _json(
        db, "--as", ada.email, "operator", "member", "invite", "fin@wholesale.example",
        "--role", "finance",
    )  # fmt: skip
    assert invited["link"].startswith("http://127.0.0.1:8000/ops/invite/")
    listed = _json(db, "operator", "member", "list")
    assert [(m["email"], m["role"]) for m in listed] == [
        ("ada@wholesale.example", "admin"), ("sam@wholesale.example", "support"),
    ]  # fmt: skip
    changed = _json(db, "--as", ada.email, "operator", "member", "role", sam.member_id, "stock")
    assert changed["role"] == "stock"
    _json(db, "--as", ada.email, "operator", "member", "remove", sam.member_id)
    assert [m["email"] for m in _json(db, "operator", "member", "list")] == [ada.email]
    with db.read_session() as session:
        actors = {
            e.action: e.actor
            for e in session.scalars(select(AuditEvent).where(AuditEvent.action.like("staff.%")))
        }
    assert actors["staff.invite"] == actors["staff.role"] == actors["staff.remove"]
    assert actors["staff.remove"] == f"staff:{ada.member_id}"


def test_the_last_admin_stays_and_only_admins_manage_the_staff(db: Database, vault: Vault) -> None:
    ada = add_staff(db, vault, "admin", "ada@wholesale.example")
    sam = add_staff(db, vault, "support", "sam@wholesale.example")
    last = run_cli(db.url, "operator", "member", "role", ada.member_id, "support")
    assert last.exit_code == 1 and "keeps at least one admin" in last.stderr
    refused = run_cli(
        db.url, "--as", sam.email, "operator", "member", "invite", "x@w.example", "--role", "admin"
    )
    assert refused.exit_code == 1 and "only staff admins" in refused.stderr
    nobody = run_cli(db.url, "--as", "ghost@w.example", "operator", "member", "list")
    assert nobody.exit_code == 0  # reading needs no person
    unknown = run_cli(db.url, "--as", "ghost@w.example", "operator", "member", "remove", "mbr_x")
    assert unknown.exit_code == 1 and "no staff member" in unknown.stderr


@pytest.mark.parametrize("role", ["owner", "buyer", "developer"])
def test_a_partner_role_is_no_staff_role(db: Database, role: str) -> None:
    result = run_cli(db.url, "operator", "member", "invite", "x@w.example", "--role", role)
    assert result.exit_code == 1 and "role must be one of admin, support, finance, stock" in (
        result.stderr
    )
