"""The public access-request form and the applicant's status page, in a real browser: applying,
following the review, refused forms kept with their values, the per-address limit, forged
forms, accessibility, and the whole way from applying to signing in as the new partner's owner.
"""

from __future__ import annotations

import re
from typing import Any

import pyotp
from playwright.sync_api import Page, expect
from sqlalchemy import func, select

from codeshelf.applications import service
from codeshelf.applications.models import Application
from codeshelf.kit.clock import utcnow
from codeshelf.kit.db import Database
from codeshelf.web.pages.apply import APPLICATIONS_PER_HOUR
from tests.fixtures.applications import USE_CASE
from tests.fixtures.applications import file as file_one
from tests.fixtures.browser import PASSWORD, Login, Portal
from tests.web.test_accessibility import _violations

STATUS_LINK = re.compile(r"http://127\.0\.0\.1:8000(/apply/status/[\w-]{43})")
FILLED = {
    "company": "Nordlicht Games GmbH",
    "website": "https://nordlicht.example",
    "country": "DE",
    "buyer_type": "reseller",
    "contact_name": "Jana Weber",
    "email": "jana@nordlicht.example",
    "monthly_volume": "25,000",
    "volume_currency": "EUR",
    "regions": "DE, AT, CH",
    "payment_preference": "bank_transfer",
    "integration": "api",
    "use_case": USE_CASE,
}


def applications(db: Database) -> int:
    with db.read_session() as session:
        return session.scalar(select(func.count()).select_from(Application)) or 0


def fill(page: Page, **changes: str) -> None:
    """Fill the form as a person does, by its labels."""
    values = {**FILLED, **changes}
    page.get_by_label("Company name", exact=True).fill(values["company"])
    page.get_by_label("Website (optional)").fill(values["website"])
    page.get_by_label("Country", exact=True).select_option(values["country"])
    page.get_by_label("Buyer type").select_option(values["buyer_type"])
    page.get_by_label("Your name", exact=True).fill(values["contact_name"])
    page.get_by_label("Work e-mail").fill(values["email"])
    page.get_by_label("Expected monthly volume").fill(values["monthly_volume"])
    page.get_by_label("Currency of the volume").select_option(values["volume_currency"])
    page.get_by_label("Regions", exact=True).fill(values["regions"])
    page.get_by_label("Payment preference").select_option(values["payment_preference"])
    way = "API workflow" if values["integration"] == "api" else "Manual delivery"
    page.get_by_label(re.compile(way)).check()
    page.get_by_label("Your integration use case").fill(values["use_case"])


def apply(portal: Portal, **changes: str) -> str:
    """Apply through the form; returns the status link's path, as the page shows it."""
    page = portal.go("/apply")
    fill(page, **changes)
    page.get_by_role("button", name="Send application").click()
    expect(page.get_by_role("heading", name="Thank you: your application is in")).to_be_visible()
    link = STATUS_LINK.fullmatch(page.locator("#status-link").inner_text())
    assert link, page.locator("#status-link").inner_text()
    return link.group(1)


def form_fields(portal: Portal, **changes: str) -> dict[str, str]:
    """The form's fields as the browser would send them, with a valid CSRF token."""
    token = portal.go("/apply").locator("input[name=csrf_token]").get_attribute("value")
    return {**FILLED, "csrf_token": token or "", **changes}


def test_an_applicant_applies_and_follows_the_review(portal: Portal, db: Database) -> None:
    portal.go("/apply")
    portal.shot("apply-form")
    path = apply(portal)
    page = portal.page
    expect(page.get_by_role("status")).to_contain_text("Keep this link")
    portal.shot("apply-done")
    page.get_by_role("link", name="Open your status page").click()
    expect(page.get_by_role("heading", name="Your application")).to_be_visible()
    expect(page.locator("#application-status")).to_have_text("Received, waiting for review")
    expect(page.get_by_text("Nordlicht Games GmbH")).to_be_visible()
    assert page.url.endswith(path)

    with db.read_session() as session:
        [public_id] = session.scalars(select(Application.public_id)).all()
        stored = service.get(session, public_id)
        assert (stored.email, stored.regions, stored.integration) == (
            "jana@nordlicht.example",
            "DE,AT,CH",
            "api",
        )
    file_one(db, company="Bolt Keys Ltd", email="ops@bolt.example")  # someone else's
    with db.session() as session:
        service.review(session, public_id, "operator:alice", utcnow())
    page.reload()
    expect(page.locator("#application-status")).to_have_text("Under review")
    with db.session() as session:
        service.approve(
            session, public_id, "operator:alice", utcnow(), "Welcome aboard!\nJana gets the link."
        )
    page.reload()
    expect(page.locator("#application-status")).to_have_text("Approved")
    expect(page.locator("#application-message")).to_contain_text("Jana gets the link.")
    assert page.locator("#application-message").inner_text() == (
        "Welcome aboard!\nJana gets the link."
    )  # its line breaks kept
    portal.shot("apply-status-approved")
    html = page.content()
    assert "Bolt Keys" not in html and "ops@bolt.example" not in html
    assert "jana@nordlicht.example" not in html and "EUR" not in html  # only what it needs


def test_a_refused_form_keeps_its_values_and_says_why_beside_each_field(
    portal: Portal, db: Database
) -> None:
    page = portal.go("/apply")
    fill(page, company="Nordlicht\u202eHbmG", regions="DE, UK")
    page.get_by_role("button", name="Send application").click()
    expect(page.get_by_role("alert")).to_contain_text("Please correct 2 fields")
    company = page.get_by_label("Company name", exact=True)
    expect(company).to_have_value("Nordlicht\u202eHbmG")
    expect(company).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#company-error")).to_contain_text("U+202E")
    expect(page.get_by_label("Regions", exact=True)).to_have_accessible_description(
        re.compile("use GB for the United Kingdom")
    )
    expect(page.get_by_label("Your integration use case")).to_have_value(USE_CASE)
    expect(page.get_by_label("Country", exact=True)).to_have_value("DE")
    expect(page.get_by_label(re.compile("API workflow"))).to_be_checked()
    portal.shot("apply-refused")
    assert applications(db) == 0

    page.get_by_label("Company name", exact=True).fill("Nordlicht Games GmbH")
    page.get_by_label("Regions", exact=True).fill("DE, GB")
    page.get_by_role("button", name="Send application").click()
    expect(page.get_by_role("heading", name="Thank you: your application is in")).to_be_visible()
    assert applications(db) == 1

    again = apply_refused(portal)  # the same address again, while the first is open
    expect(again.locator("#email-error")).to_contain_text("status link you were given")
    assert applications(db) == 1


def apply_refused(portal: Portal) -> Page:
    page = portal.go("/apply")
    fill(page)
    page.get_by_role("button", name="Send application").click()
    expect(page.get_by_role("alert")).to_be_visible()
    return page


def test_applications_are_limited_per_address(portal: Portal, db: Database) -> None:
    request = portal.page.request
    for _ in range(3):  # refused forms write nothing and do not count
        refused = request.post(portal.url + "/apply", form=form_fields(portal, company=""))
        assert refused.status == 422
    for n in range(APPLICATIONS_PER_HOUR):
        filed = request.post(
            portal.url + "/apply", form=form_fields(portal, email=f"n{n}@nordlicht.example")
        )
        assert filed.status == 200, filed.text()
    page = portal.go("/apply")
    fill(page, email="one-more@nordlicht.example")
    with page.expect_response(portal.url + "/apply") as answer:
        page.get_by_role("button", name="Send application").click()
    assert answer.value.status == 429
    assert 3500 <= int(answer.value.headers["retry-after"]) <= 3600
    expect(page.get_by_role("heading", name="Too many applications")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("try again in 60 minutes")
    portal.shot("apply-too-many")
    assert applications(db) == APPLICATIONS_PER_HOUR


def test_a_forged_application_is_refused_and_writes_nothing(portal: Portal, db: Database) -> None:
    request = portal.page.request
    body = form_fields(portal)
    no_token = request.post(portal.url + "/apply", form={**body, "csrf_token": ""})
    wrong = request.post(portal.url + "/apply", form={**body, "csrf_token": "x" * 43})
    elsewhere = request.post(
        portal.url + "/apply", form=body, headers={"Origin": "http://evil.example"}
    )
    for response in (no_token, wrong, elsewhere):
        assert response.status == 403
        assert "This form has expired or was not sent from this site" in response.text()
    portal.page.context.clear_cookies()  # the token without its cookie
    assert request.post(portal.url + "/apply", form=body).status == 403
    assert applications(db) == 0


def test_the_pages_send_their_headers_and_an_unknown_link_is_not_found(
    portal: Portal, db: Database
) -> None:
    path = file_one(db).path
    for url in ("/apply", path, "/apply/status/" + "A" * 43, "/apply/status/nonsense"):
        response = portal.page.request.get(portal.url + url)
        headers = response.headers
        assert "script-src 'self'" in headers["content-security-policy"]
        assert headers["x-frame-options"] == "DENY" and headers["cache-control"] == "no-store"
        assert headers["referrer-policy"] == "same-origin"
        assert "<script" not in response.text()
        assert response.status == (200 if url in ("/apply", path) else 404)
    page = portal.go("/apply/status/" + "A" * 43)
    expect(page.get_by_role("heading", name="Application not found")).to_be_visible()


def test_the_apply_pages_have_no_serious_accessibility_violations(
    portal: Portal, db: Database
) -> None:
    found: list[dict[str, Any]] = []
    portal.go("/apply")
    found += _violations(portal)
    page = portal.page
    fill(page, company="\u202e", regions="UK", website="https://localhost")
    page.get_by_role("button", name="Send application").click()
    expect(page.get_by_role("alert")).to_be_visible()
    found += _violations(portal)  # the refused form, errors beside the fields
    path = apply(portal)
    found += _violations(portal)  # the status link, shown once
    portal.go(path)
    found += _violations(portal)
    with db.session() as session:
        [public_id] = session.scalars(select(Application.public_id)).all()
        service.decline(session, public_id, "operator:alice", utcnow(), "Not for now.\nSorry.")
    portal.go(path)
    found += _violations(portal)
    portal.go("/apply/status/" + "A" * 43)
    found += _violations(portal)
    assert found == []


def test_from_applying_to_signing_in_as_the_new_partners_owner(
    portal: Portal, db: Database
) -> None:
    path = apply(portal, email="Jana@Nordlicht.example")
    with db.session() as session:
        [public_id] = session.scalars(select(Application.public_id)).all()
        approved = service.approve(session, public_id, "operator:alice", utcnow(), "Welcome!")
        invite, partner_id = approved.opened.invitation.path, approved.opened.partner.public_id
    page = portal.go(path)
    expect(page.locator("#application-status")).to_have_text("Approved")

    page = portal.go(invite)
    expect(page.get_by_text("jana@nordlicht.example")).to_be_visible()
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password again").fill(PASSWORD)
    page.get_by_role("button", name="Continue").click()
    secret = page.locator("#totp-secret").inner_text()
    page.get_by_label("Authentication code").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("list", name="Recovery codes").get_by_role("listitem")).to_have_count(
        10
    )
    page.get_by_role("link", name="Continue to sign in").click()
    owner = Login("jana@nordlicht.example", PASSWORD, secret, partner_id, "")
    portal.sign_in(owner, steps_ahead=1)  # the code that confirmed the authenticator is spent
    expect(
        page.get_by_text("jana@nordlicht.example · Nordlicht Games GmbH (owner)")
    ).to_be_visible()
    expect(page.get_by_role("link", name="Team")).to_be_visible()
    portal.shot("apply-owner-signed-in")
