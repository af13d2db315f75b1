"""`codeshelf wallet deposit …` under four eyes: the same arguments as ever; above the threshold
the deposit waits for a second person, who approves or declines it naming themselves with
`codeshelf --as EMAIL` (finance or admin, never the one who asked)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import Result

from codeshelf.invariants import check_all
from codeshelf.kit.db import Database
from codeshelf.members.roles import StaffRole
from codeshelf.partners import service as partners
from codeshelf.wallet import service as wallet
from tests.fixtures import factories
from tests.fixtures.staff import StaffHandle, add_staff

FOUR_EYES = {"CODESHELF_DEPOSIT_APPROVAL_OVER": "USD 5000.00,EUR 2000.00"}


def cli(db: Database, *args: str, env: dict[str, str | None] | None = None) -> Result:
    return factories.run_cli(db.url, *args, env={**FOUR_EYES, **(env or {})})


def as_(person: StaffHandle | None) -> tuple[str, ...]:
    return ("--as", person.email) if person is not None else ()


def ask(
    db: Database, partner_id: str, amount: str, *, by: StaffHandle | None = None, **kw: str
) -> Result:
    return cli(
        db, *as_(by), "wallet", "deposit", partner_id, amount,
        "--currency", kw.get("currency", "USD"), "--reference", kw.get("reference", "WIRE-1"),
        *kw.get("extra", "").split(),
    )  # fmt: skip


def ok(result: Result) -> Any:
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return json.loads(result.stdout)


def refused(result: Result, fragment: str) -> None:
    assert result.exit_code == 1, (result.stdout, result.stderr, result.exception)
    assert result.stdout == "" and fragment in result.stderr, result.stderr


def balance(db: Database, partner_id: str) -> list[str]:
    with db.read_session() as session:
        partner = partners.get_partner(session, partner_id)
        return [str(money) for money in wallet.balances(session, partner.id)]


@pytest.fixture
def finance(db: Database) -> tuple[StaffHandle, StaffHandle]:
    return add_staff(db, "fiona@codeshelf.example"), add_staff(db, "frank@codeshelf.example")


def test_at_the_threshold_the_deposit_is_credited_as_ever(
    db: Database, shop: factories.Shop
) -> None:
    data = ok(ask(db, shop.a.id, "5000.00", extra="--json"))
    assert data["status"] == "credited" and data["created"] is True
    assert data["balance"] == {"amount": "6000.00", "currency": "USD"}
    human = ask(db, shop.a.id, "5000", reference="WIRE-1")
    assert human.exit_code == 0 and "already deposited (nothing changed)" in human.stdout


def test_above_it_the_deposit_waits_and_a_second_finance_person_approves(
    db: Database, shop: factories.Shop, finance: tuple[StaffHandle, StaffHandle]
) -> None:
    fiona, frank = finance
    human = ask(db, shop.a.id, "5000.01", by=fiona)
    assert human.exit_code == 0, human.stderr
    with db.read_session() as session:
        [request] = wallet.pending_deposits(session)
    assert "waits for a second person" in human.stdout and request.id in human.stdout
    assert request.requested_by == fiona.actor
    again = ok(ask(db, shop.a.id, "5000.01", by=frank, extra="--json"))
    assert (again["status"], again["request_id"], again["created"]) == (
        "pending",
        request.id,
        False,
    )
    listed = ok(cli(db, "wallet", "deposit", "pending", "--json"))
    assert [(r["request_id"], r["amount"]["amount"]) for r in listed] == [(request.id, "5000.01")]
    assert balance(db, shop.a.id) == ["1000.00 USD"]

    refused(cli(db, *as_(fiona), "wallet", "deposit", "approve", request.id), "second person")
    approved = ok(cli(db, *as_(frank), "wallet", "deposit", "approve", request.id, "--json"))
    assert (approved["status"], approved["decided_by"]) == ("approved", frank.actor)
    assert approved["balance"] == {"amount": "6000.01", "currency": "USD"}
    assert balance(db, shop.a.id) == ["6000.01 USD"]
    refused(cli(db, *as_(fiona), "wallet", "deposit", "approve", request.id), "already approved")
    assert ok(cli(db, "wallet", "deposit", "pending", "--json")) == []
    with db.read_session() as session:
        assert check_all(session) == []


def test_the_pending_json_says_so(db: Database, shop: factories.Shop) -> None:
    data = ok(ask(db, shop.a.id, "2500.00", currency="EUR", extra="--json"))
    assert data["status"] == "pending" and data["request_id"].startswith("dep_")
    assert data["requested_by"] == "operator:cli" and data["transaction_id"] is None


def test_deciding_needs_a_named_finance_or_admin_person(
    db: Database, shop: factories.Shop, finance: tuple[StaffHandle, StaffHandle]
) -> None:
    ok(ask(db, shop.a.id, "9000.00", extra="--json"))  # asked by operator:cli
    with db.read_session() as session:
        [request] = wallet.pending_deposits(session)
    approve = ("wallet", "deposit", "approve", request.id)
    refused(cli(db, *approve), "needs a named person")
    for role in (StaffRole.SUPPORT, StaffRole.STOCK):
        other = add_staff(db, f"{role}@codeshelf.example", role)
        refused(cli(db, *as_(other), *approve), f"{other.email} is {role} staff")
        refused(
            cli(db, *as_(other), "wallet", "deposit", "decline", request.id, "--note", "x"), "staff"
        )
    refused(cli(db, "--as", "nobody@codeshelf.example", *approve), "no staff member")
    assert balance(db, shop.a.id) == ["1000.00 USD"]
    admin = add_staff(db, "ada@codeshelf.example", StaffRole.ADMIN)
    assert ok(cli(db, *as_(admin), *approve, "--json"))["status"] == "approved"
    assert balance(db, shop.a.id) == ["10000.00 USD"]


def test_a_stock_member_cannot_ask_for_a_deposit_either(db: Database, shop: factories.Shop) -> None:
    stock = add_staff(db, "sam@codeshelf.example", StaffRole.STOCK)
    refused(ask(db, shop.a.id, "10.00", by=stock), "stock staff")
    assert balance(db, shop.a.id) == ["1000.00 USD"]


def test_a_declined_deposit_credits_nothing(
    db: Database, shop: factories.Shop, finance: tuple[StaffHandle, StaffHandle]
) -> None:
    fiona, frank = finance
    ok(ask(db, shop.a.id, "9000.00", by=fiona, reference="WIRE-9", extra="--json"))
    with db.read_session() as session:
        [request] = wallet.pending_deposits(session)
    decline = ("wallet", "deposit", "decline", request.id)
    refused(cli(db, *as_(frank), *decline, "--note", " "), "note")
    refused(cli(db, *as_(fiona), *decline, "--note", "mine"), "second person")
    declined = ok(cli(db, *as_(frank), *decline, "--note", "no such wire", "--json"))
    assert (declined["status"], declined["note"]) == ("declined", "no such wire")
    refused(ask(db, shop.a.id, "9000.00", reference="WIRE-9"), "declined")
    assert balance(db, shop.a.id) == ["1000.00 USD"]


def test_a_malformed_threshold_is_a_settings_error(db: Database, shop: factories.Shop) -> None:
    result = ask(db, shop.a.id, "10.00", extra="--json")
    assert result.exit_code == 0
    bad = factories.run_cli(
        db.url, "wallet", "deposit", shop.a.id, "10.00", "--currency", "USD", "--reference", "r",
        env={"CODESHELF_DEPOSIT_APPROVAL_OVER": "USD lots"},
    )  # fmt: skip
    refused(bad, "invalid settings: CODESHELF_DEPOSIT_APPROVAL_OVER")
    assert "not a decimal amount" in bad.stderr
