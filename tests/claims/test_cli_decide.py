"""``codeshelf claims decide`` and the console's queue filters on the command line, on both
databases: codes named by position or masked code, the same answer as the operator API, the
audit record naming who decided (``--operator``, or the staff member ``--as`` names), and
refusals that change nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pyotp
from typer.testing import Result

from codeshelf.kit.clock import utcnow
from codeshelf.kit.db import Database
from codeshelf.kit.vault import Vault
from codeshelf.members.service import invitations, staff
from tests.fixtures import factories
from tests.fixtures.claims import (
    audit_events,
    claim_body,
    claimed_code_states,
    file_claim,
    place,
    set_claim,
    snapshot,
)
from tests.fixtures.http import balance

EXPOSED = "not_covered.public_exposure"


def cli(database_url: str, *args: str, env: dict[str, str | None] | None = None) -> Result:
    return factories.run_cli(database_url, *args, env=env)


def ok(result: Result) -> Any:
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return json.loads(result.stdout)


def refused(result: Result, *fragments: str) -> None:
    assert result.exit_code == 1, (result.exit_code, result.stdout, result.stderr)
    assert result.stdout == ""
    assert result.stderr.startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, (fragment, result.stderr)


def add_staff(db: Database, vault: Vault, email: str, role: str) -> str:
    """A staff member who went through the invitation; returns their member id."""
    now = utcnow()
    with db.session() as session:
        issued = staff.invite(session, None, email, role, now)
        session.flush()
        enrolment = invitations.choose_password(
            session, vault, issued.token, "a long and unusual passphrase 42", now
        )
        code = pyotp.TOTP(enrolment.secret).at(now)
        return invitations.confirm(session, vault, issued.token, code, now).member.public_id


def three_code_claim(client: httpx.Client, shop: factories.Shop) -> tuple[str, list[str]]:
    order_id, codes = place(client, shop.a.headers, quantity=3)
    return file_claim(client, shop.a.headers, claim_body(order_id, *codes, remedy="refund")), codes


def test_claims_decide_by_position_and_masked_code(
    client: httpx.Client, db: Database, shop: factories.Shop, database_url: str
) -> None:
    claim_id, codes = three_code_claim(client, shop)
    data = ok(
        cli(
            database_url,
            "claims",
            "decide",
            claim_id,
            "--approve",
            "1",
            "--approve",
            codes[2][-4:],
            "--reject",
            f"****-****-{codes[1][-4:]}",
            "--reason",
            "PSN: code 2 was shown on a stream",
            "--rule",
            EXPOSED,
            "--operator",
            "alice",
            "--json",
        )
    )
    assert data["status"] == "resolved"
    assert [c["decision"] for c in data["codes"]] == ["approved", "rejected", "approved"]
    assert data["codes"][1]["decision_rule"] == EXPOSED
    # The same document the operator API answers with.
    admin = ok(cli(database_url, "claims", "show", claim_id, "--json"))
    assert admin["codes"] == data["codes"] and admin["history"] == data["history"]
    assert claimed_code_states(db, claim_id) == ["voided", "delivered", "voided"]
    assert balance(client, shop.a.headers) == "953.50"
    [event] = audit_events(db, claim_id, "claim.decide")
    assert event.actor == "operator:alice" and event.api_key_public_id is None
    assert event.details is not None
    assert [c["decision"] for c in event.details["codes"]] == ["approved", "rejected", "approved"]
    # Human output: the claim's new state, and each code's decision in `show`.
    shown = cli(database_url, "claims", "show", claim_id)
    assert shown.exit_code == 0, shown.stderr
    assert f"2. ****-****-{codes[1][-4:]}" in shown.stdout
    assert f"rejected under {EXPOSED}" in shown.stdout
    assert ok(cli(database_url, "ledger", "check", "--json")) == {"ok": True, "violations": []}


def test_claims_decide_in_steps_and_its_refusals(
    client: httpx.Client, db: Database, shop: factories.Shop, database_url: str
) -> None:
    claim_id, _ = three_code_claim(client, shop)
    before = snapshot(db, claim_id)
    decide = ("claims", "decide", claim_id)
    refused(cli(database_url, *decide, "--reason", "nothing named"), "at least one code")
    refused(cli(database_url, *decide, "--approve", "4", "--reason", "r"), "no code 4")
    refused(cli(database_url, *decide, "--approve", "ZZZZ", "--reason", "r"), "'ZZZZ'")
    refused(cli(database_url, *decide, "--reject", "1", "--reason", "r"), EXPOSED)
    refused(cli(database_url, *decide, "--approve", "1", "--reason", " "), "reason")
    unknown = ("claims", "decide", "clm_0123456789abcdef0123", "--approve", "1")
    refused(cli(database_url, *unknown, "--reason", "r"), "no claim")
    missing = cli(database_url, *decide, "--approve", "1")
    assert missing.exit_code == 2 and "--reason" in missing.stderr
    assert snapshot(db, claim_id) == before

    step = cli(database_url, *decide, "--reject", "3", "--reason", "r", "--rule", EXPOSED)
    assert step.exit_code == 0, step.stderr
    assert f"decided {claim_id}: now triaged" in step.stdout
    refused(cli(database_url, *decide, "--approve", "3", "--reason", "r"), "already rejected")
    done = ok(cli(database_url, "claims", "approve", claim_id, "--reason", "the rest", "--json"))
    assert done["status"] == "resolved"
    assert [c["decision"] for c in done["codes"]] == ["approved", "approved", "rejected"]
    refused(cli(database_url, *decide, "--approve", "1", "--reason", "r"), "cannot be approved")


def test_decisions_name_the_staff_member_acting(
    client: httpx.Client, db: Database, vault: Vault, shop: factories.Shop, database_url: str
) -> None:
    support = add_staff(db, vault, "sam@codeshelf.example", "support")
    add_staff(db, vault, "stu@codeshelf.example", "stock")
    claim_id, _ = three_code_claim(client, shop)
    decide = ("claims", "decide", claim_id, "--reason", "verified")

    # Stock staff may not handle claims; a stranger is no one.
    refused(cli(database_url, "--as", "stu@codeshelf.example", *decide, "--approve", "1"), "stock")
    refused(cli(database_url, "--as", "who@example.com", *decide, "--approve", "1"), "--as")
    assert audit_events(db, claim_id, "claim.approve") == []

    result = cli(database_url, "--as", "sam@codeshelf.example", *decide, "--approve", "1")
    assert result.exit_code == 0, result.stderr
    [event] = audit_events(db, claim_id, "claim.approve")
    assert event.actor == f"staff:{support}"
    # CODESHELF_STAFF_EMAIL is the same as --as.
    env = {"CODESHELF_STAFF_EMAIL": "sam@codeshelf.example"}
    reject = ("claims", "reject", claim_id, "--reason", "r", "--rule", EXPOSED)
    result = cli(database_url, *reject, env=env)
    assert result.exit_code == 0, result.stderr
    assert audit_events(db, claim_id, "claim.reject")[0].actor == f"staff:{support}"


def test_claims_list_filters(
    client: httpx.Client, db: Database, shop: factories.Shop, database_url: str
) -> None:
    order_a, [code_a] = place(client, shop.a.headers)
    mine = file_claim(client, shop.a.headers, claim_body(order_a, code_a))
    order_b, [code_b] = place(client, shop.b.headers)
    theirs = file_claim(client, shop.b.headers, claim_body(order_b, code_b))
    set_claim(db, theirs, due_at=datetime.now(UTC) + timedelta(hours=2))

    def listed(*options: str) -> list[str]:
        return [c["id"] for c in ok(cli(database_url, "claims", "list", *options, "--json"))]

    assert listed() == [theirs, mine]
    assert listed("--partner", shop.a.id) == [mine]
    assert listed("--due-within", "3") == [theirs]
    assert listed("--channel", "operator") == []
    assert listed("--channel", "api", "--partner", shop.b.id) == [theirs]
    refused(cli(database_url, "claims", "list", "--channel", "email"), "email")
    refused(cli(database_url, "claims", "list", "--partner", "ptr_nobody"), "ptr_nobody")
