"""The Team page: owners and admins invite, change roles and remove; only owners touch owners;
an owner always remains; a removed member is signed out at once."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, expect
from sqlalchemy import select

from codeshelf.audit.models import AuditEvent
from codeshelf.kit.clock import utcnow
from codeshelf.kit.db import Database
from codeshelf.kit.vault import Vault
from codeshelf.members.models import Member
from codeshelf.members.service import team
from codeshelf.partners import service as partners
from tests.fixtures.browser import Portal, add_member
from tests.fixtures.factories import Shop


def test_an_owner_invites_from_the_team_page_and_the_link_works(
    portal: Portal, shop: Shop, db: Database, vault: Vault
) -> None:
    portal.enter_as(db, vault, add_member(db, vault, shop.a.id, "owner", "own@acme.example"))
    page = portal.go("/account/team")
    page.get_by_label("Email").fill("new.buyer@acme.example")
    page.get_by_label("Role", exact=True).select_option("buyer")
    page.get_by_role("button", name="Invite member").click()
    link = page.locator("#invite-link").inner_text()
    assert re.fullmatch(r"http://127\.0\.0\.1:8000/account/invite/[\w-]{43}", link)
    expect(page.get_by_text("new.buyer@acme.example (buyer)")).to_be_visible()
    portal.shot("team")
    invited = portal.go(link.removeprefix("http://127.0.0.1:8000"))
    expect(invited.get_by_text("new.buyer@acme.example")).to_be_visible()


def test_an_admin_cannot_make_or_remove_owners(
    portal: Portal, shop: Shop, db: Database, vault: Vault
) -> None:
    owner = add_member(db, vault, shop.a.id, "owner", "own@acme.example")
    portal.enter_as(db, vault, add_member(db, vault, shop.a.id, "admin", "adm@acme.example"))
    page = portal.go("/account/team")
    assert "owner" not in page.get_by_label("Role", exact=True).inner_text()
    expect(page.get_by_role("button", name="Remove own@acme.example")).to_have_count(0)
    token = portal.csrf_token()
    request = portal.page.request
    forged = request.post(
        f"{portal.url}/account/team/invite",
        form={"csrf_token": token, "email": "boss@acme.example", "role": "owner"},
    )
    assert forged.status == 403 and "only an owner" in forged.text()
    removal = request.post(
        f"{portal.url}/account/team/{owner.member_id}/remove", form={"csrf_token": token}
    )
    assert removal.status == 403
    with db.read_session() as session:
        assert session.scalar(select(Member.removed_at).where(Member.email == owner.email)) is None


def test_the_last_owner_stays_an_owner(db: Database, vault: Vault, shop: Shop) -> None:
    owner = add_member(db, vault, shop.a.id, "owner", "own@acme.example")
    with db.session() as session:
        partner = partners.get_partner(session, shop.a.id)
        actor = session.scalars(select(Member)).one()
        with pytest.raises(team.LastOwnerError):
            team.change_role(session, actor, partner, owner.member_id, "admin")
        with pytest.raises(team.LastOwnerError):
            team.remove(session, actor, partner, owner.member_id, utcnow())


def test_removing_a_member_signs_them_out_at_once(
    portal: Portal, browser: Browser, shop: Shop, db: Database, vault: Vault
) -> None:
    buyer = add_member(db, vault, shop.a.id, "buyer", "buy@acme.example")
    other = Portal(browser.new_page(), portal.url, portal.shots)
    other.enter_as(db, vault, buyer)
    assert other.go("/account/orders").url.endswith("/account/orders")

    portal.enter_as(db, vault, add_member(db, vault, shop.a.id, "owner", "own@acme.example"))
    page = portal.go("/account/team")
    page.get_by_role("button", name="Remove buy@acme.example").click()
    expect(page.get_by_text("buy@acme.example")).to_have_count(0)
    assert other.go("/account/orders").url.endswith("/account/login")
    other.page.context.close()
    with db.read_session() as session:
        removed = session.scalars(select(AuditEvent).where(AuditEvent.action == "member.remove"))
        assert [event.details for event in removed] == [{"sessions_ended": 1}]


def test_a_role_change_applies_from_the_next_page(
    portal: Portal, browser: Browser, shop: Shop, db: Database, vault: Vault
) -> None:
    buyer = add_member(db, vault, shop.a.id, "buyer", "buy@acme.example")
    other = Portal(browser.new_page(), portal.url, portal.shots)
    other.enter_as(db, vault, buyer)
    assert other.page.request.get(f"{portal.url}/account/orders/new").status == 200
    portal.enter_as(db, vault, add_member(db, vault, shop.a.id, "owner", "own@acme.example"))
    page = portal.go("/account/team")
    page.get_by_label("Role of buy@acme.example", exact=True).select_option("finance")
    page.get_by_role("button", name="Change role of buy@acme.example").click()
    expect(page.get_by_role("cell", name="finance", exact=True)).to_be_visible()
    assert other.page.request.get(f"{portal.url}/account/orders/new").status == 403
    other.page.context.close()
