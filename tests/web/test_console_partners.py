"""The console's partners, money and access requests in a real browser: four-eyes deposits,
opening a partner, its file, prices and limits, the day's reconciliation with a mismatch
highlighted, and an access request from /apply to the invited owner signed in to the portal."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx
import pyotp
import pytest
from playwright.sync_api import expect
from sqlalchemy import select, update

from codeshelf.kit.db import Database
from codeshelf.kit.settings import Settings
from codeshelf.kit.vault import Vault
from codeshelf.orders.models import Order
from codeshelf.wallet.models import LedgerTransaction, Posting
from tests.fixtures.browser import PASSWORD, Portal, add_staff
from tests.fixtures.factories import Shop
from tests.fixtures.http import order
from tests.web.test_apply import fill

INVITE = re.compile(r"http://127\.0\.0\.1:8000(/account/invite/[\w-]+)")


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.deposit_approval_over = "USD 1000.00"
    return settings


def _balance(client: httpx.Client, shop: Shop) -> str:
    data = client.get("/api/v1/balance", headers=shop.a.headers).json()["data"]
    return next(b["amount"] for b in data if b["currency"] == "USD")


def test_a_large_deposit_waits_for_a_second_finance_member(
    portal: Portal, shop: Shop, db: Database, vault: Vault, client: httpx.Client
) -> None:
    before = _balance(client, shop)
    fiona = add_staff(db, vault, "finance", "fiona@wholesale.example")
    frank = add_staff(db, vault, "finance", "frank@wholesale.example")
    portal.enter_as(db, vault, fiona)
    page = portal.go(f"/ops/partners/{shop.a.id}")
    page.get_by_label("Deposit amount").fill("5000.00")
    page.get_by_label("Reference (the bank transfer's; a repeat credits nothing)").fill("WIRE-77")
    page.get_by_role("button", name="Deposit").click()
    expect(page.get_by_role("status")).to_contain_text("waits for a second person")
    assert _balance(client, shop) == before

    page = portal.go("/ops/deposits")
    row = page.get_by_role("row").filter(has_text="WIRE-77")
    expect(row).to_contain_text("fiona@wholesale.example")
    row.get_by_role("button", name="Approve").click()
    expect(page.get_by_role("alert")).to_contain_text("a second person must approve")
    assert _balance(client, shop) == before
    portal.shot("console-deposit-refused")

    portal.page.context.clear_cookies()
    portal.enter_as(db, vault, frank)
    page = portal.go("/ops/deposits")
    page.get_by_role("row").filter(has_text="WIRE-77").get_by_role("button", name="Approve").click()
    expect(page.get_by_text("Nothing waits.")).to_be_visible()
    assert float(_balance(client, shop)) == float(before) + 5000
    decided = page.get_by_role("row").filter(has_text="WIRE-77")
    expect(decided).to_contain_text("frank@wholesale.example")


def test_a_small_deposit_is_credited_at_once_and_support_cannot_deposit(
    portal: Portal, shop: Shop, db: Database, vault: Vault, client: httpx.Client
) -> None:
    before = float(_balance(client, shop))
    portal.enter_as(db, vault, add_staff(db, vault, "finance", "fiona@wholesale.example"))
    page = portal.go(f"/ops/partners/{shop.a.id}")
    page.get_by_label("Deposit amount").fill("1000.00")  # the threshold itself: no second person
    page.get_by_label("Reference (the bank transfer's; a repeat credits nothing)").fill("WIRE-78")
    page.get_by_role("button", name="Deposit").click()
    expect(page.get_by_role("status")).to_contain_text("1000.00 USD deposited")
    assert float(_balance(client, shop)) == before + 1000

    portal.page.context.clear_cookies()
    portal.enter_as(db, vault, add_staff(db, vault, "support", "sam@wholesale.example"))
    page = portal.go(f"/ops/partners/{shop.a.id}")
    expect(page.get_by_label("Deposit amount")).to_have_count(0)
    token = page.locator("input[name=csrf_token]").first.get_attribute("value") or ""
    forged = page.request.post(
        f"{portal.url}/ops/partners/{shop.a.id}",
        form={"csrf_token": token, "action": "deposit", "amount": "9", "currency": "USD",
              "reference": "X"},
    )  # fmt: skip
    assert forged.status == 403
    assert float(_balance(client, shop)) == before + 1000


def test_an_admin_opens_a_partner_and_sets_its_price_and_limits(
    portal: Portal, shop: Shop, db: Database, vault: Vault, client: httpx.Client
) -> None:
    portal.enter_as(db, vault, add_staff(db, vault, "admin", "ada@wholesale.example"))
    page = portal.go("/ops/partners")
    page.get_by_label("Company name").fill("Kestrel Cards")
    page.get_by_label("Owner's e-mail").fill("owner@kestrel.example")
    page.get_by_role("button", name="Open partner and invite the owner").click()
    link = page.locator("#invite-link").inner_text()
    assert INVITE.fullmatch(link)
    page.get_by_role("link", name="Kestrel Cards").click()
    expect(page.get_by_text("owner@kestrel.example (owner), invited")).to_be_visible()

    page = portal.go(f"/ops/partners/{shop.a.id}")
    page.get_by_label("Product").select_option("psn-us-50")
    page.get_by_label("Partner's price (empty: back to the default)").fill("44.00")
    page.get_by_role("button", name="Set price").click()
    expect(page.get_by_role("status")).to_contain_text("44.00 USD for this partner")
    prices = client.get("/api/v1/inventory", headers=shop.a.headers).json()["data"]
    assert next(p["price"]["amount"] for p in prices if p["product_id"] == "psn-us-50") == "44.00"

    page.get_by_label("Review orders of more codes than (empty: the default)").fill("3")
    page.get_by_role("button", name="Save limits").click()
    expect(page.get_by_role("status")).to_contain_text("Limits saved")
    held = order(client, shop.a.headers, {"product_id": "psn-us-50", "quantity": 4}).json()
    assert held["review_required"] is True


def test_the_days_reconciliation_highlights_the_line_that_does_not_agree(
    portal: Portal, shop: Shop, db: Database, vault: Vault, client: httpx.Client
) -> None:
    bought = order(client, shop.a.headers).json()["id"]
    order(client, shop.b.headers)
    with db.session() as session:  # the order's wallet posting says the wallet kept 1 cent more
        order_id = session.scalar(select(Order.id).where(Order.public_id == bought))
        txn = session.scalars(
            select(LedgerTransaction).where(LedgerTransaction.order_id == order_id)
        ).one()
        session.execute(
            update(Posting)
            .where(Posting.transaction_id == txn.id, Posting.balance_after_minor.is_not(None))
            .values(balance_after_minor=Posting.balance_after_minor + 1)
        )
    portal.enter_as(db, vault, add_staff(db, vault, "finance", "fiona@wholesale.example"))
    page = portal.go("/ops/reconciliation")
    page.get_by_label("Day").fill(datetime.now(UTC).date().isoformat())
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_role("alert")).to_contain_text("Mismatches")
    flagged = page.locator("tr.mismatch")
    expect(flagged).to_have_count(1)
    expect(flagged.get_by_role("link")).to_have_attribute("href", f"/ops/partners/{shop.a.id}")
    portal.shot("console-reconciliation")
    csv = page.request.get(page.get_by_role("link", name="CSV").get_attribute("href") or "")
    assert csv.status == 200 and shop.b.id in csv.text()


def test_an_access_request_becomes_an_owner_signed_in_to_the_portal(
    portal: Portal, db: Database, vault: Vault
) -> None:
    page = portal.go("/apply")
    fill(page)
    page.get_by_role("button", name="Send application").click()
    status_link = page.locator("#status-link").inner_text().removeprefix("http://127.0.0.1:8000")

    portal.enter_as(db, vault, add_staff(db, vault, "admin", "ada@wholesale.example"))
    page = portal.go("/ops/applications")
    page.get_by_role("link", name="Nordlicht Games GmbH").click()
    page.get_by_role("button", name="Start review").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Under review")
    page.get_by_label("Message to the applicant (optional)").fill("Welcome aboard.")
    page.get_by_role("button", name="Approve and invite the owner").click()
    invite = INVITE.fullmatch(page.locator("#invite-link").inner_text())
    assert invite is not None
    portal.shot("console-application-approved")

    portal.page.context.clear_cookies()
    page = portal.go(status_link)
    expect(page.get_by_text("Welcome aboard.")).to_be_visible()
    page = portal.go(invite.group(1))
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password again").fill(PASSWORD)
    page.get_by_role("button", name="Continue").click()
    secret = page.locator("#totp-secret").inner_text()
    page.get_by_label("Authentication code").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Confirm").click()
    page.get_by_role("link", name="Continue to sign in").click()
    page.get_by_label("Email").fill("jana@nordlicht.example")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    later = pyotp.TOTP(secret).at(datetime.now(UTC) + timedelta(seconds=30))
    page.get_by_label("Authentication code").fill(later)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    expect(page.get_by_text("Nordlicht Games GmbH")).to_be_visible()
