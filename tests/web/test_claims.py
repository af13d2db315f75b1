"""Claims in the portal: filed from the order's page with the policy's verdict shown first,
followed on the claim's page, and answered when the operator asks for more."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime
from pathlib import Path

import httpx
from PIL import Image
from playwright.sync_api import expect
from sqlalchemy import select

from codeshelf.audit.models import AuditEvent
from codeshelf.claims import service as claims
from codeshelf.claims.models import Claim, ClaimStatus
from codeshelf.kit.db import Database
from codeshelf.kit.vault import Vault
from tests.fixtures.browser import Portal, add_member
from tests.fixtures.factories import Shop
from tests.fixtures.http import order


def _png(tmp_path: Path) -> Path:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(buffer, format="PNG")
    path = tmp_path / "psn-error.png"
    path.write_bytes(buffer.getvalue())
    return path


def _support(db: Database, vault: Vault, shop: Shop, portal: Portal) -> None:
    portal.enter_as(db, vault, add_member(db, vault, shop.a.id, "support", "help@acme.example"))


def test_support_files_a_claim_seeing_the_verdict_first_then_follows_it(
    portal: Portal, shop: Shop, db: Database, vault: Vault, client: httpx.Client, tmp_path: Path
) -> None:
    placed = order(client, shop.a.headers, {"product_id": shop.sku, "quantity": 2}).json()["id"]
    _support(db, vault, shop, portal)
    page = portal.go(f"/account/orders/{placed}")
    expect(page.get_by_role("button", name="Reveal codes")).to_have_count(0)  # support may not
    page.get_by_role("link", name="File a claim").click()
    page.get_by_role("button", name="Reveal code", exact=False).first.click()
    one = page.locator("#code-0 code").inner_text()  # the one code support may see
    assert one in shop.codes
    page.locator("input[name=code]").first.check()
    page.get_by_label("Problem").select_option("invalid")
    page.get_by_label("Account region").fill("US")
    page.get_by_role("button", name="Check against the policy").click()
    verdicts = page.locator("#verdicts")
    expect(verdicts).to_contain_text("needs evidence")  # no PSN error code yet
    expect(verdicts).to_contain_text("the PSN error code or a screenshot of the error")
    page.get_by_label("PSN error code").fill("WS-37432-9")
    attempted = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M")  # this minute: after delivery
    page.get_by_label("Time of the attempt (UTC)").fill(attempted)
    page.get_by_label("Screenshots (PNG or JPEG, up to 5)").set_input_files(_png(tmp_path))
    page.get_by_role("button", name="Check against the policy").click()
    expect(verdicts).to_contain_text("eligible")
    portal.shot("claim-check")
    others = [code for code in shop.codes if code != one]
    assert not any(code in page.content() for code in others)  # picked by position only
    page.get_by_role("button", name="File claim").click()

    expect(page.get_by_role("heading", name=re.compile(r"^Claim clm_"))).to_be_visible()
    expect(page.get_by_text("submitted").first).to_be_visible()
    expect(page.get_by_text(re.compile(r"UTC \(in \d+ h"))).to_be_visible()  # counting down
    portal.shot("claim")
    with db.read_session() as session:
        claim = session.scalars(select(Claim)).one()
        assert claim.channel == "api" and len(claim.evidence) == 1 and len(claim.codes) == 1
        [filed] = session.scalars(select(AuditEvent).where(AuditEvent.action == "claim.file"))
        assert filed.actor.startswith("member:mbr_")
        [shown] = session.scalars(select(AuditEvent).where(AuditEvent.action == "codes.reveal"))
        assert shown.count == 1 and shown.details == {"position": 0, "for": "claim"}

    page.get_by_label("Remedy").select_option("refund")
    page.get_by_role("button", name="Change remedy").click()
    expect(page.get_by_text("refund").first).to_be_visible()
    with db.read_session() as session:
        assert session.scalars(select(Claim.remedy)).one() == "refund"


def test_a_question_from_the_operator_is_answered_on_the_claims_page(
    portal: Portal, shop: Shop, db: Database, vault: Vault, client: httpx.Client, tmp_path: Path
) -> None:
    placed = order(client, shop.a.headers).json()["id"]
    _support(db, vault, shop, portal)
    page = portal.go(f"/account/orders/{placed}/claim")
    page.locator("input[name=code]").first.check()
    page.get_by_label("PSN error code").fill("WS-37432-9")
    page.get_by_role("button", name="File claim").click()
    claim_id = page.url.rsplit("/", 1)[1]
    with db.session() as session:
        claims.request_info(session, claim_id, claims.Actor("operator:alice"), "Which account?")
    page = portal.go(f"/account/claims/{claim_id}")
    expect(page.get_by_text("Which account?").first).to_be_visible()
    history = page.locator("ol.history li")
    expect(history.nth(0)).to_contain_text("filed")
    expect(history.nth(1)).to_contain_text("taken up by codeshelf")  # triaged on the way
    expect(history.nth(2)).to_contain_text("codeshelf asked for more information (Which account?)")
    page.get_by_label("Your answer").fill("Our customer's US account")
    page.get_by_label("Account region").fill("US")
    page.get_by_label("Screenshots (PNG or JPEG)").set_input_files(_png(tmp_path))
    portal.shot("claim-needs-info")
    page.get_by_role("button", name="Send evidence").click()
    with db.read_session() as session:
        claim = session.scalars(select(Claim)).one()
        assert claim.status == ClaimStatus.SUBMITTED and claim.account_region == "US"
        assert len(claim.evidence) == 1
    expect(page.get_by_role("button", name="Send evidence")).to_have_count(0)


def test_claims_stay_within_the_partner_and_the_roles_that_handle_them(
    portal: Portal, shop: Shop, db: Database, vault: Vault, client: httpx.Client
) -> None:
    theirs = order(client, shop.b.headers).json()["id"]
    ours = order(client, shop.a.headers).json()["id"]
    portal.enter_as(db, vault, add_member(db, vault, shop.a.id, "buyer", "buy@acme.example"))
    request = portal.page.request
    assert request.get(f"{portal.url}/account/claims").status == 403
    assert request.get(f"{portal.url}/account/orders/{ours}/claim").status == 403
    portal.page.context.clear_cookies()
    _support(db, vault, shop, portal)
    assert request.get(f"{portal.url}/account/orders/{ours}/claim").status == 200
    assert request.get(f"{portal.url}/account/orders/{theirs}/claim").status == 404
    token = portal.csrf_token()
    forged = request.post(
        f"{portal.url}/account/orders/{theirs}/claim",
        multipart={"csrf_token": token, "code": "0", "problem": "invalid"},
    )
    assert forged.status == 404
    assert request.get(f"{portal.url}/account/claims/clm_00000000000000000000").status == 404
