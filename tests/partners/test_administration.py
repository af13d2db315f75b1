"""Partner administration: the operator's read of a partner (list and detail, composed from each
domain's service), opening a partner with its owner's invitation, and its prices, review and
rate limits; each through the service, the CLI and the admin API alike."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update
from typer.testing import Result

from codeshelf.audit.models import AuditEvent
from codeshelf.catalog import service as catalog
from codeshelf.dossier import service as dossier
from codeshelf.kit.clock import utcnow
from codeshelf.kit.db import Database
from codeshelf.kit.money import Money
from codeshelf.kit.settings import Settings
from codeshelf.kit.vault import Vault
from codeshelf.members.roles import StaffRole
from codeshelf.members.service import invitations
from codeshelf.partners import service as partners
from codeshelf.partners.models import Partner
from codeshelf.wallet import service as wallet
from codeshelf.wallet.models import Account
from tests.fixtures import factories
from tests.fixtures.browser import add_member
from tests.fixtures.claims import (
    OperatorKeyHandle,
    claim_body,
    file_claim,
    issue_operator_key,
    place,
)
from tests.fixtures.http import order
from tests.fixtures.reconciliation import sandbox_headers
from tests.fixtures.servers import serve
from tests.fixtures.staff import add_staff

ADMIN = "/api/v1/admin/partners"


def ok(result: Result) -> Any:
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return json.loads(result.stdout)


def refused(result: Result, fragment: str) -> None:
    assert result.exit_code == 1, (result.stdout, result.stderr, result.exception)
    assert result.stdout == "" and fragment in result.stderr, result.stderr


def invite_member(db: Database, partner_id: str, email: str, role: str = "buyer") -> str:
    with db.session() as session:
        partner = partners.get_partner(session, partner_id)
        issued = invitations.invite(session, partner, email, role, "operator:test", utcnow())
        return issued.invitation.email


def count_partners(db: Database) -> int:
    with db.read_session() as session:
        return session.scalar(select(func.count()).select_from(Partner)) or 0


def busy_partner(client: httpx.Client, db: Database, shop: factories.Shop) -> str:
    """Partner A with a bit of everything: a price, limits, a sandbox key, a claim, a credit
    line, an alert, an invitation and a deposit waiting for a second person."""
    with db.session() as session:
        partner = partners.get_partner(session, shop.a.id)
        catalog.set_partner_price(session, partner, shop.sku, "44.00")
        partners.set_review_limits(session, partner, 50, Money.parse("2000.00", "USD"))
        partners.set_rate_limit(session, partner, 120)
        wallet.set_low_balance_alert(session, partner, "USD", Money.parse("100.00", "USD"))
        session.execute(
            update(Account)
            .where(Account.partner_id == partner.id, Account.kind == "wallet")
            .values(credit_limit_minor=25000)
        )
        wallet.ask_deposit(
            session, partner, Money.parse("9000.00", "USD"), "WIRE-9", "operator:alice",
            {"USD": Money.parse("5000.00", "USD")}, utcnow(),
        )  # fmt: skip
    sandbox_headers(db, shop.a.id)
    invite_member(db, shop.a.id, "dana@acme.example", "owner")
    order_id, [code] = place(client, shop.a.headers)
    file_claim(client, shop.a.headers, claim_body(order_id, code))
    return order_id


# --- The read service ----------------------------------------------------------------------------


def test_a_partners_detail_has_everything_the_console_shows_and_nothing_of_anyone_else(
    client: httpx.Client, db: Database, vault: Vault, shop: factories.Shop
) -> None:
    busy_partner(client, db, shop)
    bea = add_member(db, vault, shop.a.id, "buyer", "bea@acme.example")
    add_member(db, vault, shop.b.id, "finance", "bo@bolt.example")
    with db.session() as session:  # B has its own of each: none of it may show on A's page
        b = partners.get_partner(session, shop.b.id)
        catalog.set_partner_price(session, b, shop.sku, "40.00")
        wallet.ask_deposit(
            session, b, Money.parse("8000.00", "USD"), "WIRE-B", "operator:alice",
            {"USD": Money.parse("5000.00", "USD")}, utcnow(),
        )  # fmt: skip
    invite_member(db, shop.b.id, "bob@bolt.example")
    with db.read_session() as session:
        detail = dossier.partner_detail(session, shop.a.id, utcnow())
    assert (detail.partner_id, detail.name, detail.rate_limit_per_minute) == (
        shop.a.id,
        "Acme Games",
        120,
    )
    assert detail.review == dossier.ReviewLimits(50, Money.parse("2000.00", "USD"))
    assert detail.available == [Money.parse("956.00", "USD")]  # one code, at its own 44.00
    assert detail.credit_limits == [Money.parse("250.00", "USD")]
    assert detail.low_balance_alerts == [Money.parse("100.00", "USD")]
    assert [(p.sku, str(p.price), str(p.default)) for p in detail.prices] == [
        (shop.sku, "44.00 USD", "46.50 USD")
    ]
    assert sorted(k.mode for k in detail.keys) == ["live", "test"]  # its sandbox's key too
    assert shop.a.key_id in {k.key_id for k in detail.keys}
    assert shop.b.key_id not in {k.key_id for k in detail.keys}
    assert shop.a.key not in repr(detail)  # a prefix, never the key
    assert [(p.email, p.role, p.member_id) for p in detail.invitations] == [
        ("dana@acme.example", "owner", None)
    ]
    assert [(p.member_id, p.email, p.role) for p in detail.members] == [
        (bea.member_id, "bea@acme.example", "buyer")
    ]
    assert detail.claims == {"submitted": 1}
    assert detail.open_claims == 1
    assert [(r.reference, str(r.amount)) for r in detail.pending_deposits] == [
        ("WIRE-9", "9000.00 USD")
    ]


def test_the_list_has_live_partners_only_with_their_figures(
    client: httpx.Client, db: Database, shop: factories.Shop
) -> None:
    busy_partner(client, db, shop)
    with db.read_session() as session:
        listed = dossier.partner_list(session)
    assert [s.partner_id for s in listed] == [shop.a.id, shop.b.id]  # no sandbox twin
    a, b = listed
    assert (a.open_claims, a.active_keys, a.pending_deposits) == (1, 2, 1)
    assert (b.open_claims, b.active_keys, b.pending_deposits) == (0, 1, 0)
    assert b.available == [Money.parse("1000.00", "USD")] and b.held == []


def test_an_unknown_partner_is_not_found(db: Database) -> None:
    with db.read_session() as session, pytest.raises(partners.PartnerNotFoundError):
        dossier.partner_detail(session, "ptr_nope", utcnow())


# --- The CLI -------------------------------------------------------------------------------------


def test_partner_open_prints_the_owners_invitation_link(db: Database) -> None:
    data = ok(
        factories.run_cli(
            db.url, "partner", "open", "Nova Cards", "--owner", "Owner@Nova.example",
            "--rate-limit", "30", "--json",
        )
    )  # fmt: skip
    assert data["name"] == "Nova Cards" and data["partner_id"].startswith("ptr_")
    assert (data["email"], data["role"]) == ("owner@nova.example", "owner")
    assert data["link"].startswith("http://127.0.0.1:8000/account/invite/")
    token = data["link"].rsplit("/", 1)[1]
    with db.read_session() as session:
        invitation = invitations.open_invitation(session, token, utcnow())
        partner = partners.get_partner(session, data["partner_id"])
        assert invitation.partner_id == partner.id and partner.rate_limit_per_minute == 30
        assert partners.list_keys(session, partner.public_id) == []  # the owner makes keys
    human = factories.run_cli(db.url, "partner", "open", "Zed", "--owner", "z@zed.example")
    assert human.exit_code == 0 and "/account/invite/" in human.stdout
    before = count_partners(db)
    taken = add_staff(db, "taken@codeshelf.example").email
    refused(
        factories.run_cli(db.url, "partner", "open", "Again", "--owner", taken),
        "already has a codeshelf account",
    )
    refused(
        factories.run_cli(db.url, "partner", "open", "Bad", "--owner", "not-an-address"), "e-mail"
    )
    assert count_partners(db) == before  # nothing half-made


def test_the_cli_reads_and_changes_a_partner(
    client: httpx.Client, db: Database, shop: factories.Shop
) -> None:
    busy_partner(client, db, shop)
    listed = ok(factories.run_cli(db.url, "partner", "list", "--json"))
    assert [p["id"] for p in listed] == [shop.a.id, shop.b.id]
    shown = ok(factories.run_cli(db.url, "partner", "show", shop.a.id, "--json"))
    assert shown["rate_limit"] == {"per_minute": 120, "effective_per_minute": 120}
    assert shown["review_limits"]["quantity_over"] == 50
    human = factories.run_cli(db.url, "partner", "show", shop.a.id)
    assert human.exit_code == 0 and "WIRE-9" in human.stdout and "dana@acme.example" in human.stdout

    assert ok(factories.run_cli(db.url, "partner", "rate-limit", shop.a.id, "--json")) == {
        "partner_id": shop.a.id, "per_minute": None, "effective_per_minute": 60,
    }  # fmt: skip
    cleared = ok(factories.run_cli(db.url, "price", "clear", shop.a.id, shop.sku, "--json"))
    assert cleared["price"] == {"amount": "46.50", "currency": "USD"}
    assert ok(factories.run_cli(db.url, "price", "list", shop.a.id, "--json")) == []
    refused(factories.run_cli(db.url, "partner", "show", "ptr_nope"), "ptr_nope")


def test_cli_changes_need_the_right_staff_role(db: Database, shop: factories.Shop) -> None:
    stock = add_staff(db, "sam@codeshelf.example", StaffRole.STOCK)
    support = add_staff(db, "sue@codeshelf.example", StaffRole.SUPPORT)
    finance = add_staff(db, "fiona@codeshelf.example", StaffRole.FINANCE)
    for person, args in (
        (stock, ("partner", "open", "X", "--owner", "x@x.example")),
        (support, ("price", "set", shop.a.id, shop.sku, "40.00")),
        (finance, ("partner", "rate-limit", shop.a.id, "5")),
        (finance, ("partner", "limits", shop.a.id, "--quantity-over", "5")),
    ):
        refused(factories.run_cli(db.url, "--as", person.email, *args), "permission")
    ok(
        factories.run_cli(
            db.url, "--as", finance.email, "price", "set", shop.a.id, shop.sku, "40.00", "--json"
        )
    )
    with db.read_session() as session:
        actor = session.scalar(select(AuditEvent.actor).where(AuditEvent.action == "price.set"))
        assert actor == finance.actor
        assert partners.get_partner(session, shop.a.id).rate_limit_per_minute is None


# --- The admin API -------------------------------------------------------------------------------


@pytest.fixture
def api(settings: Settings, db: Database) -> Iterator[httpx.Client]:
    with serve(settings.model_copy(update={"rate_limit_per_minute": 60}), db) as http:
        yield http


@pytest.fixture
def alice(db: Database) -> OperatorKeyHandle:
    return issue_operator_key(db, "alice")


def test_the_admin_api_opens_lists_and_shows_partners(
    api: httpx.Client, db: Database, shop: factories.Shop, alice: OperatorKeyHandle
) -> None:
    body = {"name": "Nova Cards", "owner_email": "owner@nova.example", "rate_limit_per_minute": 30}
    opened = api.post(ADMIN, json=body, headers=alice.headers)
    assert opened.status_code == 201, opened.text
    partner, invitation = opened.json()["partner"], opened.json()["invitation"]
    assert partner["name"] == "Nova Cards" and partner["keys"] == []
    assert partner["rate_limit"] == {"per_minute": 30, "effective_per_minute": 30}
    assert partner["invitations"][0]["email"] == "owner@nova.example"
    assert invitation["role"] == "owner" and "/account/invite/" in invitation["link"]
    taken = add_staff(db, "taken@codeshelf.example").email
    again = api.post(ADMIN, json={**body, "owner_email": taken}, headers=alice.headers)
    assert again.status_code == 409 and again.json()["type"].endswith("/member-exists")
    bad = api.post(ADMIN, json={"name": "", "owner_email": "x@x.example"}, headers=alice.headers)
    assert bad.status_code == 422

    listed = api.get(ADMIN, headers=alice.headers).json()["data"]
    assert [p["id"] for p in listed] == [shop.a.id, shop.b.id, partner["id"]]
    shown = api.get(f"{ADMIN}/{shop.a.id}", headers=alice.headers).json()
    assert shown["available"] == [{"amount": "1000.00", "currency": "USD"}]
    assert [k["id"] for k in shown["keys"]] == [shop.a.key_id]
    assert api.get(f"{ADMIN}/ptr_nope", headers=alice.headers).status_code == 404
    with db.read_session() as session:
        actor = session.scalar(
            select(AuditEvent.actor).where(
                AuditEvent.action == "partner.create",
                AuditEvent.partner_public_id == partner["id"],
            )
        )
        assert actor == "operator:alice"


def test_the_admin_api_sets_prices_and_limits(
    api: httpx.Client, db: Database, shop: factories.Shop, alice: OperatorKeyHandle
) -> None:
    price = api.put(
        f"{ADMIN}/{shop.a.id}/prices/{shop.sku}", json={"price": "44.25"}, headers=alice.headers
    )
    assert price.status_code == 200, price.text
    assert price.json() == {
        "sku": shop.sku,
        "price": {"amount": "44.25", "currency": "USD"},
        "default": {"amount": "46.50", "currency": "USD"},
    }
    inventory = api.get("/api/v1/inventory", headers=shop.a.headers).json()["data"]
    assert [i["price"]["amount"] for i in inventory if i["product_id"] == shop.sku] == ["44.25"]
    other = api.get("/api/v1/inventory", headers=shop.b.headers).json()["data"]
    assert [i["price"]["amount"] for i in other if i["product_id"] == shop.sku] == ["46.50"]
    bad = api.put(
        f"{ADMIN}/{shop.a.id}/prices/{shop.sku}", json={"price": "44.255"}, headers=alice.headers
    )
    assert bad.status_code == 422
    unknown = api.put(
        f"{ADMIN}/{shop.a.id}/prices/psn-xx-1", json={"price": "1"}, headers=alice.headers
    )
    assert unknown.status_code == 404 and unknown.json()["type"].endswith("/product-not-found")
    assert (
        api.delete(f"{ADMIN}/{shop.a.id}/prices/{shop.sku}", headers=alice.headers).status_code
        == 204
    )
    assert api.get(f"{ADMIN}/{shop.a.id}", headers=alice.headers).json()["prices"] == []

    limits = {"quantity_over": 3, "amount_over": {"amount": "100.00", "currency": "USD"}}
    set_limits = api.put(f"{ADMIN}/{shop.a.id}/review-limits", json=limits, headers=alice.headers)
    assert set_limits.status_code == 200 and set_limits.json() == limits
    # An order of 4 codes now waits for an operator's review.
    held = order(api, shop.a.headers, {"product_id": shop.sku, "quantity": 4})
    assert held.json()["status"] == "pending", held.text

    rate = api.put(f"{ADMIN}/{shop.a.id}/rate-limit", json={"per_minute": 7}, headers=alice.headers)
    assert rate.json() == {"per_minute": 7, "effective_per_minute": 7}
    policy = api.get("/api/v1/balance", headers=shop.a.headers).headers["ratelimit-policy"]
    assert "q=7;" in policy
    sandbox = api.get("/api/v1/balance", headers=sandbox_headers(db, shop.a.id))
    assert "q=7;" in sandbox.headers["ratelimit-policy"]
    back = api.put(
        f"{ADMIN}/{shop.a.id}/rate-limit", json={"per_minute": None}, headers=alice.headers
    )
    assert back.json() == {"per_minute": None, "effective_per_minute": 60}
    assert (
        api.put(
            f"{ADMIN}/{shop.a.id}/rate-limit", json={"per_minute": 0}, headers=alice.headers
        ).status_code
        == 422
    )
    with db.read_session() as session:
        actions = set(
            session.scalars(select(AuditEvent.action).where(AuditEvent.actor == "operator:alice"))
        )
    assert actions >= {"price.set", "price.clear", "partner.review_limits", "partner.rate_limit"}


def test_partners_cannot_reach_the_partner_admin_api(
    api: httpx.Client, db: Database, shop: factories.Shop
) -> None:
    for method, path, body in (
        ("GET", ADMIN, None),
        ("GET", f"{ADMIN}/{shop.b.id}", None),
        ("POST", ADMIN, {"name": "Mine", "owner_email": "me@acme.example"}),
        ("PUT", f"{ADMIN}/{shop.a.id}/prices/{shop.sku}", {"price": "0.01"}),
        ("PUT", f"{ADMIN}/{shop.a.id}/rate-limit", {"per_minute": 100000}),
    ):
        response = api.request(method, path, json=body, headers=shop.a.headers)
        assert response.status_code == 404, (method, path, response.text)
    with db.read_session() as session:
        assert partners.get_partner(session, shop.a.id).rate_limit_per_minute is None
        assert count_partners(db) == 2
