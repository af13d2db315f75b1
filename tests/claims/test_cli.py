"""The operator's side of claims on the command line, on both databases: operator keys, the
queue, a claim's details, decisions with their audit records, claims filed for a partner, batch
quality and quarantine, and the ledger check over refunds and replacements."""

from __future__ import annotations

import hashlib
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from PIL import Image
from sqlalchemy import select, update
from typer.testing import Result

from codeshelf.audit.models import AuditEvent
from codeshelf.claims.models import Remedy
from codeshelf.kit.db import Database
from codeshelf.kit.money import Money
from codeshelf.kit.vault import Vault
from codeshelf.orders.models import Order
from codeshelf.partners import service as partners
from codeshelf.stock.models import Batch, Code
from codeshelf.wallet import service as wallet
from tests.fixtures import factories
from tests.fixtures.claims import (
    audit_events,
    backdate_delivery,
    claim_body,
    claimed_code_states,
    cli_time,
    file_claim,
    load_claim,
    place,
    reveal,
    set_claim,
    snapshot,
)
from tests.fixtures.http import assert_problem, balance, order


def cli(database_url: str, *args: str, env: dict[str, str | None] | None = None) -> Result:
    return factories.run_cli(database_url, *args, env=env)


def ok(result: Result) -> Any:
    """The one JSON document a successful --json command printed."""
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return json.loads(result.stdout)


def refused(result: Result, *fragments: str) -> str:
    """A refusal: exit code 1, nothing on stdout, "error: …" on stderr naming the problem."""
    assert result.exit_code == 1, (result.exit_code, result.stdout, result.stderr)
    assert result.stdout == ""
    assert result.stderr.startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, (fragment, result.stderr)
    return result.stderr


def shown_in(table: str, identifier: str) -> bool:
    """Whether a rich table shows ``identifier``: at a narrow width (80 columns under xdist) it
    cuts long cells to their first characters and an ellipsis."""
    return identifier in table or identifier[:8] in table


def the_batch(database_url: str) -> dict[str, Any]:
    [batch] = ok(cli(database_url, "stock", "batches", "--json"))
    data: dict[str, Any] = batch
    return data


def png(path: Path) -> Path:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 3), (200, 30, 30)).save(buffer, format="PNG")
    path.write_bytes(buffer.getvalue())
    return path


def file_by_cli(
    database_url: str,
    db: Database,
    partner_id: str,
    order_id: str,
    *codes: str,
    options: tuple[str, ...] = (),
    env: dict[str, str | None] | None = None,
) -> Result:
    backdate_delivery(db, order_id, timedelta(minutes=10))
    code_options = [part for code in codes for part in ("--code", code)]
    return cli(
        database_url,
        "claims",
        "file",
        "--partner",
        partner_id,
        "--order",
        order_id,
        *code_options,
        "--problem",
        "invalid",
        "--error-code",
        "WS-37432-9",
        "--account-region",
        "US",
        "--attempted-at",
        cli_time(datetime.now(UTC) - timedelta(minutes=1)),
        *options,
        "--json",
        env=env,
    )


# ---------------------------------------------------------------------------------------------
# Operator keys


def test_operator_keys_create_list_revoke(
    client: httpx.Client, db: Database, shop: factories.Shop, database_url: str
) -> None:
    created = ok(cli(database_url, "operator", "key", "create", "alice", "--json"))
    assert created["name"] == "alice"
    assert created["key_id"].startswith("opk_")
    assert created["api_key"].startswith("cs_op_")
    headers = {"Authorization": f"Bearer {created['api_key']}"}
    assert client.get("/api/v1/admin/claims", headers=headers).status_code == 200
    other = ok(cli(database_url, "operator", "key", "create", "bob", "--json"))

    listed = ok(cli(database_url, "operator", "key", "list", "--json"))
    assert [(k["key_id"], k["name"], k["revoked_at"]) for k in listed] == [
        (created["key_id"], "alice", None),
        (other["key_id"], "bob", None),
    ]
    assert listed[0]["prefix"] == created["api_key"][:10]
    table = cli(database_url, "operator", "key", "list")
    assert table.exit_code == 0 and shown_in(table.stdout, created["key_id"])
    for shown in (json.dumps(listed), table.stdout):
        assert created["api_key"] not in shown and other["api_key"] not in shown

    revoked = ok(cli(database_url, "operator", "key", "revoke", created["key_id"], "--json"))
    assert revoked["key_id"] == created["key_id"] and revoked["revoked_at"]
    listed = ok(cli(database_url, "operator", "key", "list", "--json"))
    assert listed[0]["revoked_at"] is not None and listed[1]["revoked_at"] is None
    assert_problem(client.get("/api/v1/admin/claims", headers=headers), 404, "not-found")
    bob = {"Authorization": f"Bearer {other['api_key']}"}
    assert client.get("/api/v1/admin/claims", headers=bob).status_code == 200

    with db.read_session() as session:
        actions = session.scalars(
            select(AuditEvent.action)
            .where(AuditEvent.api_key_public_id == created["key_id"])
            .order_by(AuditEvent.id)
        ).all()
    assert actions == ["operator_key.create", "operator_key.revoke"]

    refused(cli(database_url, "operator", "key", "revoke", "opk_nope"), "opk_nope")
    refused(cli(database_url, "operator", "key", "create", "   "), "operator name")


# ---------------------------------------------------------------------------------------------
# The queue and a claim's details


def test_claims_list_and_show(
    client: httpx.Client,
    db: Database,
    shop: factories.Shop,
    database_url: str,
    tmp_path: Path,
) -> None:
    order_a, codes_a = place(client, shop.a.headers, quantity=2)
    reveal(client, shop.a.headers, order_a)  # two retrievals
    by_api = file_claim(client, shop.a.headers, claim_body(order_a, codes_a[0]))
    order_b, [code_b] = place(client, shop.b.headers)
    screenshot = png(tmp_path / "psn-error.png")
    evidence_dir = tmp_path / "evidence"  # where the test server reads evidence from
    filed = ok(
        file_by_cli(
            database_url,
            db,
            shop.b.id,
            order_b,
            code_b,
            options=("--screenshot", str(screenshot), "--description", "by e-mail"),
            env={"CODESHELF_EVIDENCE_DIR": str(evidence_dir)},
        )
    )
    by_email = filed["id"]
    assert filed["channel"] == "operator" and filed["priority"] == 2
    assert filed["codes"][0]["verdict"] == "eligible"

    queue = ok(cli(database_url, "claims", "list", "--json"))
    assert [c["id"] for c in queue] == [by_api, by_email]  # API claims first
    assert queue[0]["partner_id"] == shop.a.id and queue[0]["order_id"] == order_a
    assert queue[0]["status"] == "submitted" and queue[0]["sla"]["overdue"] is False
    assert queue[0]["codes"][0]["rule"] == "covered.invalid"
    assert ok(cli(database_url, "claims", "list", "--overdue", "--json")) == []

    set_claim(db, by_email, due_at=datetime.now(UTC) - timedelta(hours=2))
    overdue = ok(cli(database_url, "claims", "list", "--overdue", "--json"))
    assert [c["id"] for c in overdue] == [by_email] and overdue[0]["sla"]["overdue"] is True
    table = cli(database_url, "claims", "list")
    assert table.exit_code == 0, table.stderr
    lines = [line for line in table.stdout.splitlines() if "clm_" in line]
    assert len(lines) == 2
    assert shown_in(lines[0], by_email) and "OVERDUE" in lines[0]
    assert shown_in(lines[1], by_api) and "OVERDUE" not in lines[1]
    only_overdue = cli(database_url, "claims", "list", "--overdue").stdout
    assert shown_in(only_overdue, by_email) and not shown_in(only_overdue, by_api)

    shown = ok(cli(database_url, "claims", "show", by_email, "--json"))
    assert shown["id"] == by_email and shown["channel"] == "operator"
    assert shown["description"] == "by e-mail"
    assert shown["error_code"] == "WS-37432-9" and shown["redemption"]["account_region"] == "US"
    [evidence] = shown["evidence"]
    assert evidence["media_type"] == "image/png"
    assert evidence["size_bytes"] == screenshot.stat().st_size
    assert evidence["sha256"] == hashlib.sha256(screenshot.read_bytes()).hexdigest()
    [history] = shown["history"]
    assert history["supplier"] == "Test Supply"
    assert history["batch"] == the_batch(database_url)["reference"]
    assert history["retrievals"] == 1
    assert history["state"] == "delivered" and history["delivered_at"]
    assert history["other_claims_on_batch"] == [by_api]
    # The operator API reads the same file back, checked against its checksum.
    admin = ok(cli(database_url, "operator", "key", "create", "alice", "--json"))
    fetched = client.get(
        f"/api/v1/admin/claims/{by_email}/evidence/{evidence['id']}",
        headers={"Authorization": f"Bearer {admin['api_key']}"},
    )
    assert fetched.status_code == 200 and fetched.content == screenshot.read_bytes()

    shown_api = ok(cli(database_url, "claims", "show", by_api, "--json"))
    assert shown_api["history"][0]["retrievals"] == 2
    assert shown_api["history"][0]["other_claims_on_batch"] == [by_email]
    assert shown_api["evidence"] == []
    text = cli(database_url, "claims", "show", by_api)
    assert (
        text.exit_code == 0 and "Test Supply" in text.stdout and "customer message" in text.stdout
    )

    refused(cli(database_url, "claims", "show", "clm_00000000000000000000"), "no claim")
    refused(cli(database_url, "claims", "show", "nonsense"), "no claim")


# ---------------------------------------------------------------------------------------------
# Decisions


def test_decisions_by_cli_are_audited(
    client: httpx.Client, db: Database, shop: factories.Shop, database_url: str
) -> None:
    def claim(remedy: str = "refund") -> str:
        order_id, [code] = place(client, shop.a.headers)
        return file_claim(client, shop.a.headers, claim_body(order_id, code, remedy=remedy))

    def audited(claim_id: str, action: str, reason: str | None, actor: str) -> AuditEvent:
        [event] = audit_events(db, claim_id, f"claim.{action}")
        assert event.actor == actor
        assert event.api_key_public_id is None
        assert event.details is not None and event.details["reason"] == reason
        return event

    alice = ("--operator", "alice", "--json")

    triaged = claim()
    assert ok(cli(database_url, "claims", "triage", triaged, *alice))["status"] == "triaged"
    audited(triaged, "triage", None, "operator:alice")
    asked = ok(
        cli(database_url, "claims", "request-info", triaged, "--reason", "the error screen", *alice)
    )
    assert asked["status"] == "needs_info" and asked["sla"]["due_at"] is None
    audited(triaged, "request_info", "the error screen", "operator:alice")

    approved = claim()
    done = ok(cli(database_url, "claims", "approve", approved, "--reason", "verified", *alice))
    assert done["status"] == "resolved"
    assert done["codes"][0]["remedy"]["kind"] == "refund"
    assert done["codes"][0]["remedy"]["refunded"] == {"amount": "46.50", "currency": "USD"}
    assert done["sla"]["remedy_due_at"] is not None
    audited(approved, "approve", "verified", "operator:alice")
    assert claimed_code_states(db, approved) == ["voided"]

    rejected = claim()
    result = cli(
        database_url,
        "claims",
        "reject",
        rejected,
        "--reason",
        "shown on a stream",
        "--rule",
        "not_covered.public_exposure",
        *alice,
    )
    assert ok(result)["status"] == "rejected"
    event = audited(rejected, "reject", "shown on a stream", "operator:alice")
    assert event.details is not None and event.details["rule"] == "not_covered.public_exposure"
    assert load_claim(db, rejected).decision_rule == "not_covered.public_exposure"

    escalated = claim(remedy="replacement")
    result = cli(
        database_url, "claims", "escalate", escalated, "--reason", "ask the supplier", *alice
    )
    data = ok(result)
    assert data["status"] == "escalated_upstream" and data["sla"]["upstream_due_at"]
    assert claimed_code_states(db, escalated) == ["quarantined"]
    audited(escalated, "escalate", "ask the supplier", "operator:alice")
    # The operator's name from the environment (CODESHELF_OPERATOR), and human output.
    result = cli(
        database_url,
        "claims",
        "approve",
        escalated,
        "--reason",
        "supplier confirmed",
        env={"CODESHELF_OPERATOR": "carol"},
    )
    assert result.exit_code == 0, result.stderr
    assert f"approved {escalated}: now resolved" in result.stdout
    audited(escalated, "approve", "supplier confirmed", "operator:carol")
    assert claimed_code_states(db, escalated) == ["voided"]
    # Four codes bought, one refunded; the escalated claim was replaced, not refunded.
    assert balance(client, shop.a.headers) == "860.50"
    assert ok(cli(database_url, "ledger", "check", "--json")) == {"ok": True, "violations": []}


def test_cli_refusals(
    client: httpx.Client, db: Database, shop: factories.Shop, database_url: str
) -> None:
    order_id, [code] = place(client, shop.a.headers)
    eligible = file_claim(client, shop.a.headers, claim_body(order_id, code))
    before = snapshot(db, eligible)

    unknown = "clm_0123456789abcdef0123"
    for action in ("triage", "resolve"):
        refused(cli(database_url, "claims", action, unknown), unknown)
    refused(cli(database_url, "claims", "approve", unknown, "--reason", "r"), unknown)
    refused(cli(database_url, "claims", "reject", unknown, "--reason", "r", "--rule", "x"))
    # No not-covered rule: the verdict is eligible, so one must be named.
    refused(
        cli(database_url, "claims", "reject", eligible, "--reason", "no"),
        "not_covered.public_exposure",
    )
    refused(
        cli(
            database_url,
            "claims",
            "reject",
            eligible,
            "--reason",
            "no",
            "--rule",
            "covered.invalid",
        )
    )
    refused(cli(database_url, "claims", "request-info", eligible, "--reason", "  "), "reason")
    refused(cli(database_url, "claims", "escalate", eligible, "--reason", ""), "reason")
    refused(cli(database_url, "claims", "resolve", eligible), "not approved")
    # A required option left out is a usage error, not a decision.
    missing = cli(database_url, "claims", "reject", eligible)
    assert missing.exit_code == 2 and "--reason" in missing.stderr
    assert snapshot(db, eligible) == before

    ok(cli(database_url, "claims", "approve", eligible, "--reason", "verified", "--json"))
    before = snapshot(db, eligible)
    refused(cli(database_url, "claims", "approve", eligible, "--reason", "r"), "cannot be approved")
    refused(cli(database_url, "claims", "triage", eligible), "not submitted")
    assert snapshot(db, eligible) == before


def test_claims_file_for_a_partner(
    client: httpx.Client, db: Database, shop: factories.Shop, database_url: str
) -> None:
    order_id, codes = place(client, shop.a.headers, quantity=2)
    result = file_by_cli(
        database_url, db, shop.a.id, order_id, *codes, options=("--operator", "alice")
    )
    filed = ok(result)
    assert filed["channel"] == "operator" and filed["priority"] == 2
    assert filed["status"] == "submitted" and filed["partner_id"] == shop.a.id
    assert [c["verdict"] for c in filed["codes"]] == ["eligible", "eligible"]
    assert [c["code"][-4:] for c in filed["codes"]] == [code[-4:] for code in codes]
    [event] = audit_events(db, filed["id"], "claim.file")
    assert event.actor == "operator:alice"
    assert event.details == {"order": order_id, "channel": "operator"}
    stored = load_claim(db, filed["id"])
    assert stored.triage_due_at == stored.submitted_at + timedelta(hours=24)
    # The partner sees it among its claims.
    seen = client.get(f"/api/v1/claims/{filed['id']}", headers=shop.a.headers)
    assert seen.status_code == 200 and seen.json()["channel"] == "operator"

    # Refused: the same code again, another partner's order, an unknown partner, a bad time.
    again = file_by_cli(database_url, db, shop.a.id, order_id, codes[0])
    refused(again, filed["id"])
    refused(file_by_cli(database_url, db, shop.b.id, order_id, codes[0]), order_id)
    refused(file_by_cli(database_url, db, "ptr_nobody", order_id, codes[0]), "ptr_nobody")
    other_order, [other_code] = place(client, shop.a.headers)
    refused(file_by_cli(database_url, db, shop.a.id, order_id, other_code), "was not delivered")
    bad_time = cli(
        database_url,
        "claims",
        "file",
        "--partner",
        shop.a.id,
        "--order",
        other_order,
        "--code",
        other_code,
        "--problem",
        "invalid",
        "--attempted-at",
        "yesterday",
    )
    assert bad_time.exit_code == 2
    assert ok(cli(database_url, "claims", "list", "--json"))[0]["id"] == filed["id"]
    assert len(ok(cli(database_url, "claims", "list", "--json"))) == 1


# ---------------------------------------------------------------------------------------------
# Batch quality and quarantine


def test_stock_batches_counts_what_happened(
    client: httpx.Client, db: Database, shop: factories.Shop, database_url: str
) -> None:
    order_id, codes = place(client, shop.a.headers, quantity=3)
    defective = file_claim(client, shop.a.headers, claim_body(order_id, codes[0], remedy="refund"))
    turned_down = file_claim(client, shop.a.headers, claim_body(order_id, codes[1]))
    ok(cli(database_url, "claims", "approve", defective, "--reason", "verified", "--json"))
    ok(
        cli(
            database_url,
            "claims",
            "reject",
            turned_down,
            "--reason",
            "exposed",
            "--rule",
            "not_covered.public_exposure",
            "--json",
        )
    )
    batch = the_batch(database_url)
    assert batch["sku"] == "psn-us-50" and batch["supplier"] == "Test Supply"
    assert batch["imported"] == 20
    assert batch["available"] == 17
    assert batch["delivered"] == 3
    assert batch["claimed"] == 2
    assert batch["defective"] == 1
    assert batch["quarantined"] == 0
    assert batch["defect_rate"] == round(1 / 3, 4)
    table = cli(database_url, "stock", "batches")
    assert table.exit_code == 0 and "Test Supply"[:4] in table.stdout
    assert len([line for line in table.stdout.splitlines() if "psn-" in line]) == 1

    # A replacement comes out of the same batch: delivered once more, nothing more defective.
    replaced = file_claim(client, shop.a.headers, claim_body(order_id, codes[2]))
    ok(cli(database_url, "claims", "approve", replaced, "--reason", "verified", "--json"))
    batch = the_batch(database_url)
    assert (batch["delivered"], batch["claimed"], batch["defective"], batch["available"]) == (
        4,
        3,
        2,
        16,
    )


def test_stock_quarantine_pulls_the_available_codes(
    client: httpx.Client,
    db: Database,
    vault: Vault,
    shop: factories.Shop,
    database_url: str,
) -> None:
    bad_order, _ = place(client, shop.a.headers, quantity=3)
    bad = the_batch(database_url)["reference"]
    good_codes = factories.load_codes(db, vault, "psn-us-50", 2)

    refused(cli(database_url, "stock", "quarantine", "--batch", "no-such-batch"), "no-such-batch")
    moved = ok(cli(database_url, "stock", "quarantine", "--batch", bad, "--json"))
    assert moved == {"batch": bad, "quarantined": 17}
    with db.read_session() as session:
        states = session.execute(
            select(Batch.reference, Code.state).join(Batch, Batch.id == Code.batch_id)
        ).all()
    bad_states = sorted(state for ref, state in states if ref == bad)
    assert bad_states == ["delivered"] * 3 + ["quarantined"] * 17
    assert sorted(state for ref, state in states if ref != bad) == ["available"] * 2

    [summary] = ok(cli(database_url, "stock", "summary", "--json"))
    assert summary["quarantined"] == 17 and summary["available"] == 2
    assert summary["delivered"] == 3 and summary["total"] == 22
    by_ref = {b["reference"]: b for b in ok(cli(database_url, "stock", "batches", "--json"))}
    assert by_ref[bad]["quarantined"] == 17 and by_ref[bad]["available"] == 0
    assert by_ref[bad]["delivered"] == 3
    [event] = [e for e in audit_events(db, bad) if e.action == "stock.quarantine"]
    assert event.count == 17

    # Never sold again: only the two good codes are left to sell.
    too_many = order(client, shop.a.headers, {"product_id": "psn-us-50", "quantity": 3})
    assert_problem(too_many, 409, "insufficient-stock")
    sold_order, sold = place(client, shop.a.headers, quantity=2)
    assert sorted(sold) == sorted(good_codes)
    assert_problem(order(client, shop.a.headers), 409, "insufficient-stock")
    # Quarantining again moves nothing more; the delivered order is untouched.
    assert (
        ok(cli(database_url, "stock", "quarantine", "--batch", bad, "--json"))["quarantined"] == 0
    )
    assert len(reveal(client, shop.a.headers, bad_order)) == 3
    assert sold_order != bad_order
    assert ok(cli(database_url, "ledger", "check", "--json")) == {"ok": True, "violations": []}


# ---------------------------------------------------------------------------------------------
# The ledger check over claims


def _refund_and_replacement(client: httpx.Client, shop: factories.Shop, database_url: str) -> str:
    order_id, codes = place(client, shop.a.headers, quantity=2)
    refund = file_claim(client, shop.a.headers, claim_body(order_id, codes[0], remedy="refund"))
    replace = file_claim(
        client, shop.a.headers, claim_body(order_id, codes[1], remedy="replacement")
    )
    assert (
        ok(cli(database_url, "claims", "approve", refund, "--reason", "verified", "--json"))[
            "status"
        ]
        == "resolved"
    )
    assert (
        ok(cli(database_url, "claims", "approve", replace, "--reason", "verified", "--json"))[
            "status"
        ]
        == "resolved"
    )
    assert balance(client, shop.a.headers) == "953.50"
    return refund


def test_ledger_check_passes_after_refunds_and_replacements(
    client: httpx.Client, shop: factories.Shop, database_url: str
) -> None:
    _refund_and_replacement(client, shop, database_url)
    result = cli(database_url, "ledger", "check")
    assert result.exit_code == 0, result.stderr
    assert "every invariant holds" in result.stdout
    assert ok(cli(database_url, "ledger", "check", "--json")) == {"ok": True, "violations": []}


def test_ledger_check_finds_a_refund_without_a_claim(
    client: httpx.Client, db: Database, shop: factories.Shop, database_url: str
) -> None:
    _refund_and_replacement(client, shop, database_url)
    order_id, _ = place(client, shop.b.headers)
    # A refund posted outside any claim: balanced, and the wallet's balance follows it, so only
    # the claims invariant can catch it.
    with db.session() as session:
        partner = partners.get_partner(session, shop.b.id)
        internal = session.scalar(select(Order.id).where(Order.public_id == order_id))
        assert internal is not None
        stray = wallet.refund(
            session, partner, internal, Money.parse("46.50", "USD"), "manual-goodwill-1"
        ).public_id

    result = cli(database_url, "ledger", "check")
    assert result.exit_code == 1
    assert f"refund {stray} points to no claim" in result.stderr
    assert "violation:" in result.stderr
    data = json.loads(cli(database_url, "ledger", "check", "--json").stdout)
    assert data["ok"] is False
    assert data["violations"] == [f"refund {stray} points to no claim"]


def test_ledger_check_finds_a_remedy_refunding_more_than_was_paid(
    db: Database, client: httpx.Client, shop: factories.Shop, database_url: str
) -> None:
    refund_claim = _refund_and_replacement(client, shop, database_url)
    remedy = load_claim(db, refund_claim).codes[0].remedy
    assert remedy is not None and remedy.amount_minor == 4650
    with db.session() as session:
        session.execute(update(Remedy).where(Remedy.id == remedy.id).values(amount_minor=4651))
    result = cli(database_url, "ledger", "check", "--json")
    assert result.exit_code == 1
    violations = json.loads(result.stdout)["violations"]
    assert f"remedy {remedy.id}: refunded 4651 but 4650 was paid" in violations
    assert f"remedy {remedy.id}: 4651 recorded but 4650 credited to the wallet" in violations

    # A remedied code handed back to the partner as if it were good.
    with db.session() as session:
        session.execute(update(Code).where(Code.id == remedy.code_id).values(state="delivered"))
    violations = json.loads(cli(database_url, "ledger", "check", "--json").stdout)["violations"]
    assert "1 remedied code(s) are not voided" in violations


def test_claims_list_refuses_an_unknown_status(
    client: httpx.Client, shop: factories.Shop, database_url: str
) -> None:
    """The operator API answers 422 to an unknown status; the CLI must not answer a typo
    (needs-info for needs_info) with an empty queue as if nothing were waiting."""
    order_id, [code] = place(client, shop.a.headers)
    claim_id = file_claim(client, shop.a.headers, claim_body(order_id, code))
    ok(cli(database_url, "claims", "request-info", claim_id, "--reason", "screenshot", "--json"))
    assert [
        c["id"] for c in ok(cli(database_url, "claims", "list", "--status", "needs_info", "--json"))
    ] == [claim_id]
    refused(cli(database_url, "claims", "list", "--status", "needs-info", "--json"), "needs-info")


def test_waiting_replacements_are_served_oldest_first_as_stock_allows(
    client: httpx.Client, db: Database, vault: Vault, database_url: str, tmp_path: Path
) -> None:
    shop = factories.make_shop(db, vault, stock_count=2)
    order_id, codes = place(client, shop.a.headers, quantity=2)
    first = file_claim(client, shop.a.headers, claim_body(order_id, codes[1]))
    second = file_claim(client, shop.a.headers, claim_body(order_id, codes[0]))
    for claim_id in (first, second):
        approved = ok(
            cli(database_url, "claims", "approve", claim_id, "--reason", "verified", "--json")
        )
        assert approved["status"] == "approved"
        assert approved["codes"][0]["remedy"]["state"] == "waiting"
    refused(cli(database_url, "claims", "resolve", second), "wait for stock")
    assert ok(cli(database_url, "claims", "fulfil", "--json")) == {"resolved": []}

    one = tmp_path / "one.txt"
    one.write_text(factories.random_code() + "\n")
    imported = cli(database_url, "stock", "import", str(one), "--sku", "psn-us-50", "--batch", "B1")
    assert imported.exit_code == 0, imported.stderr
    assert load_claim(db, first).status == "resolved"
    assert load_claim(db, second).status == "approved"
    assert [c["id"] for c in ok(cli(database_url, "claims", "list", "--json"))] == [second]

    factories.load_codes(db, vault, "psn-us-50", 1)  # arrives without the CLI
    assert ok(cli(database_url, "claims", "fulfil", "--json")) == {"resolved": [second]}
    assert ok(cli(database_url, "ledger", "check", "--json")) == {"ok": True, "violations": []}
