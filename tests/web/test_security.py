"""The portal under attack: forged forms, stolen or stale sessions, guessed passwords and
codes, one partner's member probing another partner's orders, and cached pages."""

from __future__ import annotations

import logging
from datetime import timedelta

import httpx
import pytest
from playwright.sync_api import expect
from sqlalchemy import update

from codeshelf.kit.clock import utcnow
from codeshelf.kit.db import Database
from codeshelf.kit.vault import Vault
from codeshelf.members.models import WebSession
from codeshelf.members.service import signin
from tests.fixtures import factories
from tests.fixtures.browser import Portal, add_member
from tests.fixtures.factories import Shop
from tests.fixtures.http import order, order_count


def _owner(db: Database, vault: Vault, shop: Shop, email: str = "owner@acme.example"):  # type: ignore[no-untyped-def]
    return add_member(db, vault, shop.a.id, "owner", email)


def test_every_page_sends_its_security_headers(
    portal: Portal, shop: Shop, db: Database, vault: Vault
) -> None:
    portal.sign_in(_owner(db, vault, shop))
    for path in ("/account/login", "/account/", "/account/orders", "/account/orders/new"):
        response = portal.page.request.get(portal.url + path)
        headers = response.headers
        assert "script-src 'self'" in headers["content-security-policy"]
        assert "unsafe-inline" not in headers["content-security-policy"]
        assert headers["x-frame-options"] == "DENY"
        assert headers["referrer-policy"] == "same-origin"
        assert headers["cache-control"] == "no-store"
    cookies = {c["name"]: c for c in portal.page.context.cookies()}
    session = cookies["__Host-codeshelf_session"]
    assert session["httpOnly"] and session["secure"] and session["sameSite"] == "Lax"
    assert (session["path"] == "/" and "domain" not in session) or session["domain"] == "127.0.0.1"


def test_no_page_carries_inline_script(
    portal: Portal, shop: Shop, db: Database, vault: Vault
) -> None:
    portal.enter_as(db, vault, _owner(db, vault, shop))
    for path in ("/account/", "/account/orders", "/account/orders/new"):
        html = portal.go(path).content()
        assert "<script>" not in html and " on" not in html.split("<body", 1)[1].split(">", 1)[0]


def test_a_forged_form_is_refused_and_changes_nothing(
    portal: Portal, shop: Shop, db: Database, vault: Vault
) -> None:
    portal.enter_as(db, vault, _owner(db, vault, shop))
    request = portal.page.request
    body = {"product": shop.sku, "quantity": "1", "idempotency_key": "forged-1"}
    no_token = request.post(portal.url + "/account/orders/new", form=body)
    assert no_token.status == 403
    wrong = request.post(portal.url + "/account/orders/new", form={**body, "csrf_token": "x" * 43})
    assert wrong.status == 403
    token = (
        portal.go("/account/orders/new")
        .locator("input[name=csrf_token]")
        .first.get_attribute("value")
    )
    other_site = request.post(
        portal.url + "/account/orders/new",
        form={**body, "csrf_token": token or ""},
        headers={"Origin": "http://evil.example"},
    )
    assert other_site.status == 403
    assert order_count(db) == 0
    ours = request.post(
        portal.url + "/account/orders/new", form={**body, "csrf_token": token or ""}
    )
    assert ours.ok and order_count(db) == 1


def test_a_double_submitted_form_buys_once(
    portal: Portal, shop: Shop, db: Database, vault: Vault
) -> None:
    portal.enter_as(db, vault, _owner(db, vault, shop))
    page = portal.go("/account/orders/new")
    form = {
        "product": shop.sku,
        "quantity": "1",
        "csrf_token": page.locator("input[name=csrf_token]").first.get_attribute("value") or "",
        "idempotency_key": page.locator("input[name=idempotency_key]").get_attribute("value") or "",
    }
    first = page.request.post(portal.url + "/account/orders/new", form=form, max_redirects=0)
    second = page.request.post(portal.url + "/account/orders/new", form=form, max_redirects=0)
    assert first.status == second.status == 303
    assert first.headers["location"] == second.headers["location"]
    assert order_count(db) == 1


def test_five_wrong_passwords_lock_the_account_and_say_until_when(
    portal: Portal, shop: Shop, db: Database, vault: Vault
) -> None:
    login = _owner(db, vault, shop)
    page = portal.go("/account/login")
    for _ in range(signin.MAX_FAILURES):
        page.get_by_label("Email").fill(login.email)
        page.get_by_label("Password").fill("not the password at all")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("alert")).to_be_visible()
    page.get_by_label("Email").fill(login.email)
    page.get_by_label("Password").fill(login.password)  # right, but too late
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("locked until")
    portal.shot("login-locked")


def test_a_wrong_or_replayed_code_does_not_sign_in(
    portal: Portal, shop: Shop, db: Database, vault: Vault
) -> None:
    login = _owner(db, vault, shop)
    spent = portal.sign_in(login)
    portal.page.context.clear_cookies()
    page = portal.go("/account/login")
    page.get_by_label("Email").fill(login.email)
    page.get_by_label("Password").fill(login.password)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_label("Authentication code").fill("000000" if spent != "000000" else "111111")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("not right")  # a wrong code
    # The very code of the first sign-in, replayed (even once the clock has moved on: it is
    # still within the step of drift allowed, and its step is spent).
    page.get_by_label("Authentication code").fill(spent)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("not right")
    assert portal.go("/account/").url.endswith("/account/login")


def test_a_recovery_code_signs_in_once(
    portal: Portal, shop: Shop, db: Database, vault: Vault
) -> None:
    # The demo's route to recovery codes is the invitation page; here they come from the service.
    from sqlalchemy import select

    from codeshelf.members.models import RecoveryCode
    from codeshelf.members.service import credentials

    login = _owner(db, vault, shop)
    code = "ABCD-EFGH-JKMN"
    with db.session() as session:
        first = session.scalars(select(RecoveryCode)).first()
        assert first is not None
        first.code_hash = credentials.recovery_hash(code)
    for attempt in range(2):
        portal.page.context.clear_cookies()
        page = portal.go("/account/login")
        page.get_by_label("Email").fill(login.email)
        page.get_by_label("Password").fill(login.password)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_label("Authentication code").fill(code.lower().replace("-", " "))
        page.get_by_role("button", name="Sign in").click()
        if attempt == 0:
            expect(page.get_by_role("heading", name="Overview")).to_be_visible()
        else:
            expect(page.get_by_role("alert")).to_contain_text("not right")


def test_an_idle_session_ends_and_a_removed_session_ends_at_once(
    portal: Portal, shop: Shop, db: Database, vault: Vault
) -> None:
    login = _owner(db, vault, shop)
    portal.sign_in(login)
    with db.session() as session:
        session.execute(update(WebSession).values(last_seen_at=utcnow() - timedelta(minutes=31)))
    assert portal.go("/account/orders").url.endswith("/account/login")

    portal.sign_in(login, steps_ahead=1)
    assert portal.go("/account/orders").url.endswith("/account/orders")
    with db.session() as session:
        from sqlalchemy import select

        from codeshelf.members.models import Member

        member = session.scalars(select(Member)).one()
        assert signin.end_all_sessions(session, member.id, utcnow()) == 1
    assert portal.go("/account/orders").url.endswith("/account/login")


def test_signing_out_ends_the_session_for_its_cookie_too(
    portal: Portal, shop: Shop, db: Database, vault: Vault
) -> None:
    portal.sign_in(_owner(db, vault, shop))
    stolen = "; ".join(f"{c['name']}={c['value']}" for c in portal.page.context.cookies())
    with httpx.Client(base_url=portal.url, headers={"Cookie": stolen}) as replay:
        assert replay.get("/account/orders").status_code == 200  # the cookie works, until...
        portal.page.get_by_role("button", name="Sign out").click()
        expect(
            portal.page.get_by_role("heading", name="Sign in to your partner portal")
        ).to_be_visible()
        assert replay.get("/account/orders").status_code == 303


def test_another_partners_order_is_not_found(
    portal: Portal, shop: Shop, db: Database, vault: Vault, client: httpx.Client
) -> None:
    theirs = order(client, shop.b.headers).json()["id"]
    ours = order(client, shop.a.headers).json()["id"]
    portal.enter_as(db, vault, _owner(db, vault, shop))
    assert (
        portal.go(f"/account/orders/{ours}")
        .get_by_role("heading", name=f"Order {ours}")
        .is_visible()
    )
    response = portal.page.request.get(f"{portal.url}/account/orders/{theirs}")
    assert response.status == 404 and theirs not in response.text().split("<main", 1)[0]
    token = (
        portal.go("/account/orders/new")
        .locator("input[name=csrf_token]")
        .first.get_attribute("value")
    )
    reveal = portal.page.request.post(
        f"{portal.url}/account/orders/{theirs}/reveal", form={"csrf_token": token or ""}
    )
    assert reveal.status == 404
    listed = portal.go("/account/orders").content()
    assert ours in listed and theirs not in listed


def test_a_session_ends_12_hours_after_sign_in_however_busy(
    portal: Portal, shop: Shop, db: Database, vault: Vault
) -> None:
    portal.enter_as(db, vault, _owner(db, vault, shop))
    assert portal.go("/account/orders").url.endswith("/account/orders")
    with db.session() as session:
        session.execute(
            update(WebSession).values(created_at=utcnow() - timedelta(hours=12, seconds=1))
        )
    assert portal.go("/account/orders").url.endswith("/account/login")


def test_one_address_guessing_across_accounts_is_throttled(
    portal: Portal, shop: Shop, db: Database, vault: Vault
) -> None:
    from codeshelf.web.pages.signin import ATTEMPTS_PER_ADDRESS

    login = _owner(db, vault, shop)
    page = portal.go("/account/login")
    token = page.locator("input[name=csrf_token]").get_attribute("value") or ""
    for n in range(ATTEMPTS_PER_ADDRESS):
        answer = page.request.post(
            f"{portal.url}/account/login",
            form={"csrf_token": token, "email": f"nobody{n}@acme.example", "password": "x" * 12},
        )
        assert answer.status == 401
    throttled = page.request.post(
        f"{portal.url}/account/login",
        form={"csrf_token": token, "email": login.email, "password": login.password},
    )
    assert throttled.status == 429 and "too many sign-in attempts" in throttled.text()


def test_no_plaintext_code_reaches_the_logs_or_any_page_but_the_reveal(
    portal: Portal,
    shop: Shop,
    db: Database,
    vault: Vault,
    client: httpx.Client,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    placed = order(client, shop.a.headers, {"product_id": shop.sku, "quantity": 3}).json()["id"]
    portal.enter_as(db, vault, _owner(db, vault, shop))
    seen = ""
    pages = ("", "orders", f"orders/{placed}", f"orders/{placed}/claim", "activity", "statement")
    for path in pages:
        seen += portal.go(f"/account/{path}").content()
    page = portal.go(f"/account/orders/{placed}")
    page.get_by_role("button", name="Reveal codes").click()
    page.locator("#codes table").wait_for()
    revealed = page.locator("#codes code.code").all_inner_texts()
    assert len(revealed) == 3
    seen += portal.go("/account/activity").content()
    assert not any(code in seen for code in shop.codes)
    assert not any(code in caplog.text for code in shop.codes)
    assert not any(code in portal.page.url for code in shop.codes)


def test_new_order_refusals_say_what_the_api_says_and_a_corrected_form_then_buys(
    portal: Portal, shop: Shop, db: Database, vault: Vault
) -> None:
    poor = factories.add_partner(db, "Cash Poor")
    factories.deposit(db, poor.id, "50.00")
    portal.enter_as(db, vault, add_member(db, vault, poor.id, "buyer", "buy@poor.example"))
    page = portal.go("/account/orders/new")
    page.get_by_label("Quantity").fill(str(len(shop.codes) + 1))
    page.get_by_role("button", name="Place order").click()
    expect(page.get_by_role("alert")).to_contain_text(f"{len(shop.codes) + 1} requested")
    page.get_by_label("Quantity").fill("2")  # 93.00 from a wallet of 50.00
    page.get_by_role("button", name="Place order").click()
    expect(page.get_by_role("alert")).to_contain_text("balance")
    page.get_by_label("Quantity").fill("1")
    page.get_by_role("button", name="Place order").click()
    expect(page.get_by_text("Your code is ready.")).to_be_visible()
    assert order_count(db) == 1
