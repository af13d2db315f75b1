"""A reseller's first day in the portal: invited by the operator, a password, two-factor
authentication, then an order, its codes revealed, all in a real browser."""

from __future__ import annotations

import re
from pathlib import Path

import pyotp
import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from codeshelf.audit.models import AuditEvent
from codeshelf.claims import service as claims
from codeshelf.claims.models import Claim
from codeshelf.kit.db import Database
from codeshelf.kit.vault import Vault
from tests.fixtures.browser import PASSWORD, Login, Portal
from tests.fixtures.factories import Shop, run_cli
from tests.fixtures.http import available_codes, order_count
from tests.web.test_claims import _png

pytestmark = pytest.mark.both_backends  # the whole first day, on each database


def _invite(db: Database, shop: Shop, email: str, role: str = "owner") -> str:
    result = run_cli(
        db.url, "partner", "member", "invite", shop.a.id, email, "--role", role, "--json"
    )
    assert result.exit_code == 0, result.output
    link: str = __import__("json").loads(result.stdout)["link"]
    assert re.fullmatch(r"http://127\.0\.0\.1:8000/account/invite/[\w-]{43}", link), link
    return link.removeprefix("http://127.0.0.1:8000")


def test_invited_member_sets_a_password_and_2fa_buys_reveals_and_claims(
    portal: Portal, shop: Shop, db: Database, tmp_path: Path
) -> None:
    path = _invite(db, shop, "Dana@Acme.example")
    page = portal.go(path)
    expect(page.get_by_text("dana@acme.example")).to_be_visible()
    portal.shot("invite-password")
    page.get_by_label("Password", exact=True).fill("short")
    page.get_by_label("Password again").fill("short")
    page.get_by_role("button", name="Continue").click()
    # The browser's own minlength check stops it first; the server's rule is tested below.
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password again").fill(PASSWORD)
    page.get_by_role("button", name="Continue").click()

    expect(page.get_by_role("heading", name="Set up two-factor authentication")).to_be_visible()
    expect(page.get_by_role("img", name="QR code of your authenticator key")).to_be_visible()
    secret = page.locator("#totp-secret").inner_text()
    assert re.fullmatch(r"[A-Z2-7]{32}", secret)
    portal.shot("invite-2fa")
    page.get_by_label("Authentication code").fill("000000")
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("alert")).to_contain_text("not right")
    page.get_by_label("Authentication code").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Confirm").click()
    codes = page.get_by_role("list", name="Recovery codes").get_by_role("listitem")
    expect(codes).to_have_count(10)
    portal.shot("invite-recovery-codes")

    page.get_by_role("link", name="Continue to sign in").click()
    login = Login("dana@acme.example", PASSWORD, secret, shop.a.id, "")
    # The code just used to confirm is spent: the next step's code signs in.
    portal.sign_in(login, steps_ahead=1)
    expect(page.get_by_text("1000.00 USD")).to_be_visible()

    page.get_by_role("link", name="New order").click()
    page.get_by_label("Product").select_option(shop.sku)
    page.get_by_label("Quantity").fill("2")
    portal.shot("new-order")
    page.get_by_role("button", name="Place order").click()
    expect(page.get_by_role("heading", name=re.compile(r"^Order ord_"))).to_be_visible()
    expect(page.get_by_text("Your code is ready.")).to_be_visible()
    html = page.content()
    assert not any(code in html for code in shop.codes)  # masked until revealed
    portal.shot("order")

    page.get_by_role("button", name="Reveal codes").click()
    revealed = page.locator("#codes code.code")
    expect(revealed).to_have_count(2)
    assert set(revealed.all_inner_texts()) <= set(shop.codes)
    portal.shot("order-revealed")
    with page.expect_download() as download:
        page.get_by_role("button", name="Download codes (CSV)").click()
    saved = download.value.path().read_text().splitlines()
    assert saved[0] == "product_id,code,state"
    assert sorted(line.split(",")[1] for line in saved[1:]) == sorted(revealed.all_inner_texts())
    assert order_count(db) == 1 and available_codes(db) == len(shop.codes) - 2
    with db.read_session() as session:
        reveals = session.scalars(select(AuditEvent).where(AuditEvent.action == "codes.reveal"))
        # The reveal and the CSV: each written down, with who did it.
        assert [(r.actor[:11], r.count) for r in reveals] == [("member:mbr_", 2)] * 2

    # The first code does not redeem: a claim with a screenshot of PSN's error.
    page.get_by_role("link", name="File a claim").click()
    page.locator("input[name=code]").first.check()
    page.get_by_label("PSN error code").fill("WS-37432-9")
    page.get_by_label("Screenshots (PNG or JPEG, up to 5)").set_input_files(_png(tmp_path))
    page.get_by_role("button", name="File claim").click()
    expect(page.get_by_role("heading", name=re.compile(r"^Claim clm_"))).to_be_visible()
    claim_id = page.url.rsplit("/", 1)[1]
    with db.session() as session:  # the operator asks (their console comes later)
        claims.request_info(session, claim_id, claims.Actor("operator:alice"), "Which region?")

    page = portal.go("/account/")
    expect(page.get_by_text("907.00 USD")).to_be_visible()  # the order was paid from the wallet
    expect(page.get_by_role("link", name=claim_id)).to_be_visible()  # waiting for our answer
    portal.shot("overview")
    page.get_by_role("link", name=claim_id).click()
    page.get_by_label("Your answer").fill("A US account")
    page.get_by_label("Account region").fill("US")
    page.get_by_role("button", name="Send evidence").click()
    with db.read_session() as session:
        claim = session.scalars(select(Claim)).one()
        assert claim.status == "submitted" and claim.account_region == "US"
        assert len(claim.evidence) == 1


def test_the_invitation_link_works_once(
    portal: Portal, shop: Shop, db: Database, vault: Vault
) -> None:
    path = _invite(db, shop, "once@acme.example", "buyer")
    page = portal.go(path)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password again").fill(PASSWORD)
    page.get_by_role("button", name="Continue").click()
    secret = page.locator("#totp-secret").inner_text()
    page.get_by_label("Authentication code").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("list", name="Recovery codes")).to_be_visible()
    again = portal.go(path)
    expect(again.get_by_role("alert")).to_contain_text("unknown, used, revoked or expired")


def test_a_common_password_is_refused_with_the_reason(
    portal: Portal, shop: Shop, db: Database
) -> None:
    page = portal.go(_invite(db, shop, "weak@acme.example", "buyer"))
    page.get_by_label("Password", exact=True).fill("1qaz2wsx3edc")
    page.get_by_label("Password again").fill("1qaz2wsx3edc")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("alert")).to_contain_text("most common")


def test_the_demo_owner_signs_in_with_what_make_run_prints(portal: Portal, db: Database) -> None:
    result = run_cli(db.url, "demo", "--json")
    assert result.exit_code == 0, result.output
    shown = __import__("json").loads(result.stdout)["portal"]
    assert shown["url"] == "http://127.0.0.1:8000/account/login"
    login = Login(shown["email"], shown["password"], shown["totp_secret"], "", "")
    portal.sign_in(login, steps_ahead=1)  # the demo's own enrolment spent this step's code
    expect(portal.page.get_by_text("Demo Reseller (owner)")).to_be_visible()
